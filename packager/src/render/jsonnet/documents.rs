//! Finding the documents in a Jsonnet file's output while it is being evaluated.
//!
//! The rules are every template's: an array holds documents (arrays may nest); an object
//! without `kind` whose values are all objects or arrays maps names to documents, taken in key
//! order; a `*List` object with `items` stands for its items; anything else is one document.
//! Walking the evaluator's lazy value, rather than parsing its whole JSON output, lets each
//! document be manifested and handed on as soon as it is evaluated, so the caller checks one
//! while the evaluator computes the next.

use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::val::ArrValue;
use jrsonnet_evaluator::{
    ObjValue, Result, ResultExt, Val, ensure_sufficient_stack, in_description_frame,
};

/// One document of the output.
pub struct Document {
    /// 1-based position among the file's documents; the items of a `List` share its number.
    pub number: usize,
    /// The document as minified JSON.
    pub json: String,
}

/// Walks `value`, giving each document to `found` in order. Stops early, without error, when
/// `found` returns false (nobody wants the rest).
pub fn walk(value: &Val, found: &mut dyn FnMut(Document) -> bool) -> Result<()> {
    Walker { found, number: 0, wanted: true }.collection(value)
}

struct Walker<'a> {
    found: &'a mut dyn FnMut(Document) -> bool,
    number: usize,
    wanted: bool,
}

impl Walker<'_> {
    fn collection(&mut self, value: &Val) -> Result<()> {
        match value {
            Val::Arr(items) => ensure_sufficient_stack(|| self.elements(items, Self::collection)),
            Val::Obj(object) if !object.has_field("kind".into()) => {
                let fields = evaluated_fields(object)?;
                if !fields.iter().all(|(_, v)| matches!(v, Val::Obj(_) | Val::Arr(_))) {
                    return self.document(value);
                }
                ensure_sufficient_stack(|| {
                    for (key, field) in &fields {
                        if !self.wanted {
                            break;
                        }
                        in_description_frame(
                            || format!("field <{key}> manifestification"),
                            || self.collection(field),
                        )?;
                    }
                    Ok(())
                })
            }
            _ => self.document(value),
        }
    }

    fn document(&mut self, value: &Val) -> Result<()> {
        self.number += 1;
        let Some(items) = list_items(value)? else {
            return self.send(value);
        };
        in_description_frame(
            || "field <items> manifestification".into(),
            || self.elements(&items, Self::send),
        )
    }

    /// Visits each element of an array, with the trace frames manifesting it would add, until
    /// nobody wants more.
    fn elements(
        &mut self,
        items: &ArrValue,
        visit: fn(&mut Self, &Val) -> Result<()>,
    ) -> Result<()> {
        for (i, item) in items.iter().enumerate() {
            if !self.wanted {
                break;
            }
            let item = item.with_description(|| format!("elem <{i}> evaluation"))?;
            in_description_frame(
                || format!("elem <{i}> manifestification"),
                || visit(self, &item),
            )?;
        }
        Ok(())
    }

    fn send(&mut self, value: &Val) -> Result<()> {
        let json = value.manifest(JsonFormat::minify())?;
        self.wanted = (self.found)(Document { number: self.number, json });
        Ok(())
    }
}

/// The visible fields of an object with their values, in key order.
fn evaluated_fields(object: &ObjValue) -> Result<Vec<(jrsonnet_evaluator::IStr, Val)>> {
    object.run_assertions()?;
    object
        .iter()
        .map(|(key, value)| {
            let value = value.with_description(|| format!("field <{key}> evaluation"))?;
            Ok((key, value))
        })
        .collect()
}

/// The items of a `List` (any visible string `kind` ending in `List`, with an array `items`),
/// as kubectl and Argo CD read one.
fn list_items(value: &Val) -> Result<Option<ArrValue>> {
    let Val::Obj(object) = value else { return Ok(None) };
    let field = |name: &str| -> Result<Option<Val>> {
        if !object.has_field(name.into()) {
            return Ok(None);
        }
        object.get(name.into()).with_description(|| format!("field <{name}> evaluation"))
    };
    let is_list =
        matches!(field("kind")?, Some(Val::Str(kind)) if kind.into_flat().ends_with("List"));
    if !is_list {
        return Ok(None);
    }
    Ok(match field("items")? {
        Some(Val::Arr(items)) => Some(items),
        _ => None,
    })
}
