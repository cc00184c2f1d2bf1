"""Earlier Pulumi states of a stack on the file backend (this project's default), for a state rollback.

`pulumi stack export --version N` works only on Pulumi Cloud: the file (DIY) backend refuses it ("the
current backend (...) does not provide the ability to export previous deployments"). What that backend
keeps instead: after every update, a copy of the stack's state in
`<backend>/.pulumi/history/<project>/<stack>/<stack>-<unix ns>.checkpoint.json` beside the update's
`...history.json` (pulumi/pulumi pkg/backend/diy: addToHistory). A checkpoint is not what `pulumi stack
import` reads (`{"version", "deployment"}`): `extract` turns one into that shape, as the CLI's own
ExportDeployment does (`checkpoint.latest` as the deployment).

    python3 -m operations.state_history list <stack>
    python3 -m operations.state_history extract <stack> <N> --file state-N.json
    pulumi stack import --stack <stack> --file state-N.json

N counts back from the newest update (1: the state after the last update, 2: the one before, ...).
The backend is PULUMI_BACKEND_URL, else Pulumi.yaml's backend.url, as the CLI resolves them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class HistoryError(Exception):
    pass


def backend_directory(cwd: Path = ROOT) -> Path:
    url = os.environ.get("PULUMI_BACKEND_URL") or (
        (yaml.safe_load((cwd / "Pulumi.yaml").read_text()) or {}).get("backend") or {}).get("url")
    if url and url.split("://", 1)[0] in ("s3", "gs", "azblob"):
        raise HistoryError(f"the backend {url} keeps the same history in its bucket: copy its .pulumi/history "
                           "directory to <dir>/.pulumi/history and run this with PULUMI_BACKEND_URL=file://<dir>")
    if not url or not url.startswith("file://"):
        raise HistoryError(f"the backend is {url or 'not set'}, not a file:// backend: on Pulumi Cloud, "
                           "`pulumi stack export --stack <stack> --version <N>` exports an earlier state")
    path = url[len("file://"):].split("?", 1)[0]
    return Path(os.path.abspath(os.path.join(cwd, os.path.expanduser(path))))


def _read(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def updates(stack: str, backend: Path, project: str = "litellm-gateway") -> list[tuple[int, Path, dict]]:
    """(unix ns, checkpoint file, update info) per update, newest first."""
    pulumi = backend / ".pulumi" / "history"
    directory = pulumi / project / stack
    if not directory.is_dir():
        directory = pulumi / stack  # the backend's legacy layout (no project directory)
    if not directory.is_dir():
        raise HistoryError(f"no update history of stack '{stack}' under {pulumi}")
    found = []
    for checkpoint in directory.glob(f"{stack}-*.checkpoint.json*"):
        stamp = checkpoint.name[len(stack) + 1:].split(".", 1)[0]
        if not stamp.isdigit():
            continue
        info_path = checkpoint.with_name(checkpoint.name.replace(".checkpoint.json", ".history.json"))
        info = _read(info_path) if info_path.is_file() else {}
        found.append((int(stamp), checkpoint, info))
    if not found:
        raise HistoryError(f"stack '{stack}' has no saved states in {directory}")
    return sorted(found, key=lambda item: item[0], reverse=True)


def importable(checkpoint_file: Path) -> dict:
    """The checkpoint as `pulumi stack import` reads it: {"version", "features"?, "deployment"}."""
    checkpoint = _read(checkpoint_file)
    latest = (checkpoint.get("checkpoint") or {}).get("latest")
    if not isinstance(latest, dict):
        raise HistoryError(f"{checkpoint_file} holds no state (no checkpoint.latest)")
    document = {"version": checkpoint.get("version", 3), "deployment": latest}
    if checkpoint.get("features"):
        document["features"] = checkpoint["features"]
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the saved states, newest first")
    listing.add_argument("stack")
    extract = commands.add_parser("extract", help="write state N (1: the newest) as `pulumi stack import` reads it")
    extract.add_argument("stack")
    extract.add_argument("number", type=int)
    extract.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    try:
        found = updates(args.stack, backend_directory(Path.cwd()))
        if args.command == "list":
            for number, (stamp, _, info) in enumerate(found, 1):
                when = datetime.fromtimestamp(stamp / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                changes = ", ".join(f"{k} {v}" for k, v in sorted((info.get("resourceChanges") or {}).items()))
                print(f"{number:3d}  {when}  {info.get('kind', '?'):8s} {info.get('result', '?'):10s} "
                      f"{changes}  {info.get('message', '')}".rstrip())
            return 0
        if not 1 <= args.number <= len(found):
            raise HistoryError(f"state {args.number} does not exist: stack '{args.stack}' has {len(found)} "
                               "(`list` shows them)")
        Path(args.file).write_text(json.dumps(importable(found[args.number - 1][1]), indent=2))
        print(f"wrote {args.file}: the state after update {args.number} (counting back from the newest); "
              f"import it with `pulumi stack import --stack {args.stack} --file {args.file}`")
        return 0
    except HistoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
