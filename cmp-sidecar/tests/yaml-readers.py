#!/usr/bin/env python3
"""Reads each YAML file given as JSON on stdin ([{"text", "identity"}]) with PyYAML (YAML 1.1,
as Argo CD reads) and ruamel.yaml (YAML 1.2, as forge-pack reads) and prints, as JSON, every
file where the two disagree, either fails, or the identity differs from the one given."""
import json
import sys

import yaml
from ruamel.yaml import YAML

yaml_1_2 = YAML(typ="safe", pure=True)
problems = []
for case in json.load(sys.stdin):
    text, identity = case["text"], case["identity"]
    try:
        old, new = yaml.safe_load(text), yaml_1_2.load(text)
    except Exception as e:  # noqa: BLE001 - any reader failure is a finding
        problems.append({"text": text, "problem": f"a reader fails: {e}"})
        continue
    if old != new:
        problems.append({"text": text, "problem": f"YAML 1.1 reads {old!r}, YAML 1.2 {new!r}"})
        continue
    metadata = old.get("metadata") or {}
    seen = [old.get("apiVersion"), old.get("kind"), metadata.get("namespace"), metadata.get("name")]
    if seen != identity:
        problems.append({"text": text, "problem": f"identity is {seen!r}, not {identity!r}"})
json.dump(problems, sys.stdout)
