//! Numbers a template writes that its reader would change: an integer beyond 64 bits becomes a
//! float, `1e-400` becomes `0.0`, `3.14159265358979323846` loses digits. The parsers do so
//! silently; forge-pack refuses them, naming the line, so that a release never holds a value
//! other than the one written. (Jsonnet numbers are doubles by the language's definition:
//! what Jsonnet computes is kept.)

/// Every number in `text` (a YAML or JSON template) its reader would change, with its line:
/// plain scalars outside quotes, comments and block scalars.
pub fn inexact_numbers(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let flagged = flagged_chunks(bytes);
    if !flagged.iter().any(|f| *f) {
        return found;
    }
    let mut block_indent: Option<usize> = None;
    let mut start = 0;
    // Lines split with memchr, looked at as bytes: this runs over every byte of every template.
    for (index, end) in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]).enumerate() {
        let (line, chunks) = (&text[start..end], start / CHUNK..=end.saturating_sub(1) / CHUNK);
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let indent = line.bytes().take_while(u8::is_ascii_whitespace).count();
        if let Some(parent) = block_indent {
            if indent == line.len() || indent > parent {
                continue;
            }
            block_indent = None;
        }
        // Most lines hold no candidate and start no block scalar: nothing to take apart.
        if !flagged[chunks].iter().any(|f| *f) || !has_candidates(line.as_bytes()) {
            continue;
        }
        let code = outside_quotes_and_comments(line);
        for token in tokens(&code) {
            if !exact(token) {
                found.push((index + 1, token.to_owned()));
            }
        }
        let trimmed = code.trim_end();
        if trimmed.ends_with('|') || trimmed.ends_with('>') || block_header(trimmed) {
            block_indent = Some(indent);
        }
    }
    found
}

/// Bytes looked at together by [`flagged_chunks`].
const CHUNK: usize = 64;

/// For each [`CHUNK`] of `bytes`, whether it may hold a candidate (see [`has_candidates`]): an
/// exponent right after a digit or a point, a `|` or `>`, or 8 bytes that may be part of a run
/// of digits (digits, `.`, `_`): a run of 16 digits has 8 such bytes in some chunk (all of a
/// chunk it spans whole). Branch-free over the whole text, so that it vectorises; the lines of
/// the few chunks it flags are looked at closely.
fn flagged_chunks(bytes: &[u8]) -> Vec<bool> {
    (0..bytes.len().div_ceil(CHUNK))
        .map(|i| {
            let (from, to) = (i * CHUNK, ((i + 1) * CHUNK).min(bytes.len()));
            let previous = &bytes[from.saturating_sub(1)..to.saturating_sub(1)];
            let current = &bytes[from + usize::from(from == 0)..to];
            let mut marks = u8::from(from == 0 && matches!(bytes.first(), Some(b'|' | b'>')));
            let run_byte = |b: u8| u8::from(b.is_ascii_digit() | (b == b'.') | (b == b'_'));
            let mut runs = u8::from(from == 0) * bytes.first().map_or(0, |b| run_byte(*b));
            for (&p, &b) in previous.iter().zip(current) {
                let after_digit = p.is_ascii_digit() | (p == b'.');
                marks |= u8::from((b | 0x20) == b'e') & u8::from(after_digit);
                marks |= u8::from(b == b'|') | u8::from(b == b'>');
                runs += run_byte(b);
            }
            marks != 0 || runs >= 8
        })
        .collect()
}

/// Whether `line` holds anything that could be an inexact number (an exponent right after a
/// digit, or 16 digits in a row) or a `|` or `>` that may start a block scalar.
fn has_candidates(line: &[u8]) -> bool {
    let mut run = 0;
    let mut previous = b' ';
    for &b in line {
        match b {
            b'0'..=b'9' => {
                run += 1;
                if run >= 16 {
                    return true;
                }
            }
            b'.' | b'_' => {}
            b'e' | b'E' if previous.is_ascii_digit() || previous == b'.' => return true,
            b'|' | b'>' => return true,
            _ => run = 0,
        }
        previous = b;
    }
    false
}

/// `key: |-`, `key: >+2` and the like: the lines below are text.
fn block_header(code: &str) -> bool {
    let Some(last) = code.split_whitespace().last() else { return false };
    (last.starts_with('|') || last.starts_with('>'))
        && last[1..].bytes().all(|b| b == b'-' || b == b'+' || b.is_ascii_digit())
}

/// The line with quoted text and comments blanked out.
fn outside_quotes_and_comments(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
                out.push(' ');
            }
            Some(q) if c == q => {
                // `''` inside single quotes is an escaped quote.
                if q == '\'' && chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    quote = None;
                }
                out.push(' ');
            }
            Some(_) => out.push(' '),
            None if (c == '"' || c == '\'')
                && (previous.is_whitespace() || ":[{,-".contains(previous)) =>
            {
                quote = Some(c);
                out.push(' ');
            }
            None if c == '#' && previous.is_whitespace() => break,
            None => out.push(c),
        }
        previous = c;
    }
    out
}

/// Plain tokens that read as numbers: standing alone between YAML or JSON delimiters.
fn tokens(code: &str) -> Vec<&str> {
    let delimiter = |c: char| c.is_whitespace() || ",[]{}:".contains(c);
    code.split(delimiter)
        .map(|t| t.trim_start_matches('-').trim_start_matches('+'))
        .filter(|t| {
            t.starts_with(|c: char| c.is_ascii_digit())
                || (t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_digit()))
        })
        .filter(|t| looks_numeric(t))
        .collect()
}

fn looks_numeric(token: &str) -> bool {
    let mut seen_exponent = false;
    let mut previous = ' ';
    for c in token.chars() {
        let fine = match c {
            '0'..='9' | '.' | '_' => true,
            'e' | 'E' if !seen_exponent => {
                seen_exponent = true;
                true
            }
            '+' | '-' => previous == 'e' || previous == 'E',
            _ => false,
        };
        if !fine {
            return false;
        }
        previous = c;
    }
    true
}

/// Whether the number `token` reads as is kept exactly: an integer within 64 bits, or a float
/// whose shortest form is the same decimal.
fn exact(token: &str) -> bool {
    let digits = token.replace('_', "");
    let is_integer = !digits.contains(['.', 'e', 'E']);
    if is_integer {
        return digits.parse::<u64>().is_ok() || digits.parse::<i64>().is_ok();
    }
    let Ok(value) = digits.parse::<f64>() else { return true };
    if !value.is_finite() {
        // Refused by the parser itself.
        return true;
    }
    decimal(&digits) == decimal(&format!("{value:e}"))
}

/// A number's decimal value as (significant digits, exponent of the first), zero as ("", 0).
fn decimal(text: &str) -> (String, i64) {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let whole = whole.trim_start_matches(['+', '-']);
    let all = format!("{whole}{fraction}");
    let leading = all.len() - all.trim_start_matches('0').len();
    let significant = all.trim_start_matches('0').trim_end_matches('0').to_owned();
    if significant.is_empty() {
        return (String::new(), 0);
    }
    (significant, exponent + whole.len() as i64 - leading as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_the_reader_would_change_are_found_with_their_line() {
        let text = "a: 1e-400\nb: 18446744073709551616\nc: 3.14159265358979323846\nd: 0.1\ne: 1.0\nf: 1e3\ng: 9223372036854775807\nh: -9223372036854775808\ni: [1, 2.5e-3, 12345678901234567890123]\n";
        assert_eq!(
            inexact_numbers(text),
            vec![
                (1, "1e-400".to_owned()),
                (2, "18446744073709551616".to_owned()),
                (3, "3.14159265358979323846".to_owned()),
                (9, "12345678901234567890123".to_owned()),
            ]
        );
    }

    #[test]
    fn numbers_are_found_wherever_they_fall_among_the_chunks() {
        // A long number, one with separators spread over chunks, and an exponent: at every
        // offset from a chunk boundary, and at the very start.
        for number in ["18446744073709551616", "1_000_000_000_000_000_000_000", "1e-400"] {
            for pad in 0..2 * CHUNK {
                let text = format!("a: {}\nb: {number}\n", "x".repeat(pad));
                assert_eq!(inexact_numbers(&text), vec![(2, number.to_owned())], "pad {pad}");
            }
            assert_eq!(inexact_numbers(number), vec![(1, number.to_owned())]);
        }
        // Fewer than 8 digits in any chunk, more than 64 bits in all.
        let spread: Vec<String> = "123456789012345678901".chars().map(String::from).collect();
        let spread = format!("a: {}\n", spread.join(&"_".repeat(9)));
        assert_eq!(inexact_numbers(&spread).len(), 1, "{spread}");
    }

    #[test]
    fn quoted_commented_and_block_text_is_not_a_number() {
        let text = "a: \"1e-400\"\nb: '18446744073709551616'\nc: x # 1e-400\nd: |\n  1e-400\n  18446744073709551616\ne: 1\n{\"f\": \"3.14159265358979323846\"}\n";
        assert!(inexact_numbers(text).is_empty(), "{:?}", inexact_numbers(text));
    }
}
