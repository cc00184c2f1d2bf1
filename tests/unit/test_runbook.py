"""docs/RUNBOOK.md: every command is one of this repository's scripts (with options the script
really has) or a Pulumi/Vault CLI command from the documented set."""

import re
import shlex
import subprocess

from harness import ROOT

RUNBOOK = (ROOT / "docs" / "RUNBOOK.md").read_text()
PULUMI_COMMANDS = {("stack", "history"), ("stack", "export"), ("stack", "import"), ("config", "set"),
                   ("preview",), ("up",), ("refresh",), ("cancel",)}
VAULT_COMMANDS = {("kv", "get"), ("kv", "rollback"), ("kv", "metadata")}


def commands():
    for block in re.findall(r"```bash\n(.*?)```", RUNBOOK, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                yield line


def test_runbook_has_the_sections_the_on_call_needs():
    for heading in ("Take a backup now", "Restore the database", "Roll back the Vault secret",
                    "Roll back a bad deploy", "If the salt key is lost", "Rehearse a restore"):
        assert heading in RUNBOOK
    for phrase in ("pulumi stack history", "pulumi stack export --stack <stack> --version <N>", "pulumi stack import",
                   "pulumi cancel", "vault kv rollback"):
        assert phrase in RUNBOOK


def test_every_command_is_a_script_or_a_documented_cli_command():
    seen_scripts = set()
    for command in commands():
        words = shlex.split(command.replace("<", "").replace(">", ""))
        if words[0] == "export":
            continue
        if words[0].startswith("./scripts/"):
            script = ROOT / words[0][2:]
            assert script.is_file(), command
            if script.name == "stack":  # ./scripts/stack <command> <stack> [pulumi options]: they go to pulumi
                usage = subprocess.run([str(script)], capture_output=True, text=True).stderr
                assert re.search(rf"[{{|]{re.escape(words[1])}[|}}]", usage), command
                seen_scripts.add(script.name)
                continue
            help_text = subprocess.run([str(script), "--help"], capture_output=True, text=True).stdout
            for option in (w.split("=")[0] for w in words[1:] if w.startswith("--")):
                assert option in help_text, f"{command}: {script.name} has no option {option}"
            seen_scripts.add(script.name)
        elif words[0] == "pulumi":
            assert tuple(words[1:2]) in PULUMI_COMMANDS or tuple(words[1:3]) in PULUMI_COMMANDS, command
        elif words[0] == "vault":
            assert tuple(words[1:3]) in VAULT_COMMANDS, command
        elif words[:3] == ["python3", "-m", "operations.state_history"]:
            assert words[3] in ("list", "extract"), command
        elif words[0] == "cd":
            assert command.endswith("&& sha256sum -c SHA256SUMS"), command
        else:
            raise AssertionError(f"unexpected command in the runbook: {command}")
    assert {"backup", "restore", "fetch-backup"} <= seen_scripts
