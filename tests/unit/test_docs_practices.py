"""What the docs tell users to type follows the project's own rules: every deploy goes through
`./scripts/stack` (the policy pack runs), no secret is typed on a command line (the shell history
and the process list keep it), and the troubleshooting entries quote messages the program prints."""

from __future__ import annotations

import re

import pytest

from harness import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = [*ROOT.glob("scripts/*"), *ROOT.glob("scripts/lib/*"), *ROOT.glob("config/**/*.py"),
           *ROOT.glob("operations/**/*.py"), *ROOT.glob("components/*.py"), *ROOT.glob("renderers/*.py")]


def bash_lines(doc) -> list[str]:
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S)
            for line in block.splitlines()]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_deploy_commands_go_through_scripts_stack(doc):
    plain = [line for line in bash_lines(doc) if re.match(r"pulumi (up|preview|refresh|destroy)\b", line)]
    assert plain == [], f"use ./scripts/stack <command> <stack> (it runs the policy pack): {plain}"


@pytest.mark.parametrize("doc", [*DOCS, *ROOT.glob("config/**/*.py")], ids=lambda p: p.name)
def test_no_secret_value_is_typed_on_a_command_line(doc):
    text = doc.read_text()
    # A value: quoted, a variable or a `<placeholder>`; `< file` (a redirect) and a pipe are fine.
    typed = re.findall(r"pulumi config set --secret (?:--stack \S+ )?\w+ (?:[\"'$]|<\w)\S*", text)
    assert typed == [], f"pipe or redirect secret values into `pulumi config set --secret KEY`: {typed}"


def test_the_troubleshooting_entries_quote_what_the_program_prints():
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations[operations.index("## Troubleshooting"):]
    quoted = re.findall(r"^- `([^`]+)`", section, re.M)
    code = "\n".join(p.read_text() for p in SOURCES if p.is_file())
    assert quoted
    missing = []
    for message in quoted:
        if message.startswith(("401", "404")):
            continue  # HTTP statuses: LiteLLM's and HAProxy's own
        # `...` and `N` stand for what varies; a quoted word may be a variable in the code ('up': '$command').
        fragments = [f.strip() for f in re.split(r"\.\.\.|\bN\b|[();]", message) if len(f.split()) >= 2]
        patterns = [re.sub(r"'\w+'", "'[^']+'", re.escape(f)) for f in fragments]
        if not fragments or not all(re.search(p, code) for p in patterns):
            missing.append(message)
    assert missing == [], missing
