"""The rendered pull-and-verify script and the drift reader, run over real SSH (Debian's sshd).

Each test gets a fresh GPU host stand-in: sshd on loopback with the `ollama` command-line test
double on the remote PATH (Ollama itself cannot be installed here).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.ollama_drift import OllamaHostModelsProvider
from config.sections.fleet import ModelPullSettings
from renderers.ollama_scripts import (EXIT_CODES, LIST_COMMAND, install_command, prune_command, pull_command,
                                     render_host_script, stdin_command)
from servers import free_port, ssh_host

DOUBLE = Path(__file__).with_name("ollama_cli_double.py")
REGISTRY = {
    "llama3.1:8b": {"id": "46e0c10c039e", "size": "4.9 GB"},
    "qwen2.5:0.5b": {"id": "a8b0c5157701", "size": "397 MB"},
}
FAST = ModelPullSettings(retries=3, backoff_seconds=1, attempt_timeout_seconds=10, timeout_seconds=60)
provider = OllamaHostModelsProvider()


@pytest.fixture
def host():
    with ssh_host(DOUBLE, REGISTRY) as gpu:
        yield gpu


def run_script(host, command, pulls=FAST, name="gpu-test", ollama_port=11434):
    script = render_host_script(name, ollama_port, pulls)
    return provider.run(host.transport(name), command, script, timeout=120)


def failure_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("OLLAMA_PULL_FAILED")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_pull_reports_one_machine_readable_line_and_a_second_run_pulls_nothing(host):
    code, out, err = run_script(host, stdin_command("pull", "llama3.1:8b"))
    assert code == 0, err
    assert out.strip() == "OLLAMA_MODEL host=gpu-test model=llama3.1:8b digest=46e0c10c039e size=4.9GB status=pulled"
    assert host.state()["pulls"] == 1
    code, out, err = run_script(host, stdin_command("pull", "llama3.1:8b"))
    assert code == 0, err
    assert out.strip().endswith("status=present")
    assert host.state()["pulls"] == 1, "a model already present must not be pulled again"
    assert sum(1 for call in host.state()["calls"] if call[0] == "pull") == 1


def test_transient_errors_are_retried_with_backoff(host):
    host.set_state(fail={"mode": "transient", "remaining": 2})
    started = time.monotonic()
    code, out, err = run_script(host, stdin_command("pull", "qwen2.5:0.5b"))
    assert code == 0, err
    assert out.strip().endswith("status=pulled")
    assert err.count("failed: ") == 2 and "attempt 1/3" in err and "attempt 2/3" in err
    assert time.monotonic() - started >= 1 + 2, "backoff of 1 s then 2 s between attempts"


def test_retries_are_bounded(host):
    host.set_state(fail={"mode": "transient", "remaining": 10})
    code, _, err = run_script(host, stdin_command("pull", "qwen2.5:0.5b"))
    assert code == EXIT_CODES["pull-failed"]
    line = failure_line(err)
    assert "host=gpu-test model=qwen2.5:0.5b cause=pull-failed" in line
    assert "3 attempt(s)" in line and "name resolution" in line
    assert sum(1 for call in host.state()["calls"] if call[0] == "pull") == 3


def test_unknown_tag_fails_at_once_naming_host_model_and_cause(host):
    code, _, err = run_script(host, stdin_command("pull", "llama9:999b"))
    assert code == EXIT_CODES["unknown-tag"]
    line = failure_line(err)
    assert "host=gpu-test model=llama9:999b cause=unknown-tag" in line and "file does not exist" in line
    assert sum(1 for call in host.state()["calls"] if call[0] == "pull") == 1, "an unknown tag is not retried"


def test_full_disk_fails_naming_the_cause(host):
    host.set_state(fail={"mode": "disk-full"})
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b"))
    assert code == EXIT_CODES["disk-full"]
    assert "host=gpu-test model=llama3.1:8b cause=disk-full" in failure_line(err)
    assert "no space left on device" in failure_line(err)


def test_a_hanging_pull_is_stopped_by_the_overall_timeout(host):
    host.set_state(fail={"mode": "hang"})
    pulls = ModelPullSettings(retries=5, backoff_seconds=0, attempt_timeout_seconds=10, timeout_seconds=14)
    started, wall_started = time.monotonic(), time.time()
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b"), pulls=pulls)
    elapsed = time.monotonic() - started
    assert code == EXIT_CODES["timeout"]
    assert "host=gpu-test model=llama3.1:8b cause=timeout" in failure_line(err)
    assert elapsed < 14 + 25, f"took {elapsed:.0f} s"
    # Each attempt hung until its own timeout stopped it (10 s), then the overall one (14 s) stopped the
    # second: two pulls started in this run, both after it began, and no hung pull is left on the host.
    hanging = host.state()["hanging"]
    assert len(hanging) == 2, hanging
    assert all(h["since"] >= wall_started for h in hanging)
    assert hanging[1]["since"] - hanging[0]["since"] >= 10 - 1
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{h['pid']}").exists() for h in hanging) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [h["pid"] for h in hanging if Path(f"/proc/{h['pid']}").exists()], "a timed-out pull still runs"


def test_ollama_not_running(host):
    host.set_state(fail={"mode": "down"})
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b"))
    assert code == EXIT_CODES["ollama-not-running"]
    line = failure_line(err)
    assert "host=gpu-test model=llama3.1:8b cause=ollama-not-running" in line and "ollama serve" in line


def test_the_pull_reaches_ollama_on_the_hosts_declared_port_only(host):
    """The script sets OLLAMA_HOST=127.0.0.1:<ollamaPort>; the client double dials it as Ollama's does."""
    host.set_state(listen="127.0.0.1:11500")
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b"))  # declared 11434: not there
    assert code == EXIT_CODES["ollama-not-running"], err
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b"), ollama_port=11500)
    assert code == 0, err


def test_ollama_not_installed(host):
    code, _, err = run_script(host, "PATH=/usr/bin:/bin " + stdin_command("pull", "llama3.1:8b"))
    assert code == EXIT_CODES["ollama-not-installed"]
    assert "host=gpu-test model=llama3.1:8b cause=ollama-not-installed" in failure_line(err)


def test_pinned_digest_is_verified(host):
    code, out, err = run_script(host, stdin_command("pull", "llama3.1:8b", "46e0c10c039e"))
    assert code == 0 and "digest=46e0c10c039e" in out, err
    # A host holding another version of the tag is pulled again; still wrong after the pull: refused.
    code, _, err = run_script(host, stdin_command("pull", "llama3.1:8b", "sha256:" + "f" * 64))
    assert code == EXIT_CODES["digest-mismatch"]
    assert "cause=digest-mismatch" in failure_line(err)


def test_prune_removes_and_is_idempotent(host):
    run_script(host, stdin_command("pull", "qwen2.5:0.5b"))
    code, out, _ = run_script(host, prune_command("qwen2.5:0.5b"))
    assert code == 0 and "status=removed" in out
    assert "qwen2.5:0.5b" not in host.state()["models"]
    code, out, _ = run_script(host, prune_command("qwen2.5:0.5b"))
    assert code == 0 and "status=absent" in out


def test_list_reports_every_model(host):
    run_script(host, stdin_command("pull", "qwen2.5:0.5b"))
    run_script(host, stdin_command("pull", "llama3.1:8b"))
    code, out, _ = run_script(host, LIST_COMMAND)
    assert code == 0
    assert provider.parse_models(out) == {
        "qwen2.5:0.5b": {"digest": "a8b0c5157701", "size": "397MB", "status": "listed"},
        "llama3.1:8b": {"digest": "46e0c10c039e", "size": "4.9GB", "status": "listed"},
    }


# --- the drift reader (dynamic provider) -----------------------------------------------------------

def reader_props(host, expected, name="gpu-test"):
    return {"host": name, "transport": host.transport(name), "script": render_host_script(name, 11434, FAST),
            "expected": expected, "read_timeout": 30, "pull_timeout": 60}


EXPECTED = {"llama": {"tag": "llama3.1:8b", "digest": ""}, "qwen": {"tag": "qwen2.5:0.5b", "digest": "a8b0c5157701"}}


def test_reader_reports_a_model_removed_outside_pulumi(host):
    for want in EXPECTED.values():
        assert run_script(host, stdin_command("pull", want["tag"], want["digest"] or None))[0] == 0
    props = reader_props(host, EXPECTED)
    created = provider.create(props).outs
    assert created["status"] == "in-sync" and created["missing"] == []
    assert provider.diff("id", created, props).changes is False, "no drift, no change"

    state = host.state()
    del state["models"]["llama3.1:8b"]  # someone ran `ollama rm` on the host
    host.set_state(models=state["models"])
    refreshed = provider.read("id", created).outs
    assert refreshed["status"] == "drift"
    assert refreshed["missing"] == ["llama"]
    assert refreshed != created, "refresh must see the change"
    assert provider.diff("id", refreshed, props).changes is True, "preview --expect-no-changes must fail"

    healed = provider.update("id", refreshed, props).outs  # `pulumi up` pulls it again
    assert healed["status"] == "in-sync"
    assert "llama3.1:8b" in host.state()["models"]


def test_reader_reports_a_replaced_model(host):
    for want in EXPECTED.values():
        run_script(host, stdin_command("pull", want["tag"], want["digest"] or None))
    created = provider.create(reader_props(host, EXPECTED)).outs
    state = host.state()
    state["models"]["llama3.1:8b"]["id"] = "0badc0ffee00"   # replaced by another build of the tag
    state["models"]["qwen2.5:0.5b"]["id"] = "deadbeef0000"  # and the pinned one too
    host.set_state(models=state["models"])
    refreshed = provider.read("id", created).outs
    assert refreshed["models"]["llama"]["digest"] == "0badc0ffee00" != created["models"]["llama"]["digest"]
    assert refreshed["mismatched"] == ["qwen"]
    assert refreshed["status"] == "drift"


def test_reader_on_an_unreachable_host_reports_it_by_name(host):
    props = reader_props(host, EXPECTED)
    props["transport"] = dict(props["transport"], port=free_port())
    observed = provider.read("id", props).outs
    assert observed["status"].startswith("unreachable:")
    assert observed["missing"] == sorted(EXPECTED)
    with pytest.raises(RuntimeError, match="host gpu-test"):
        provider.create(props)


def test_a_host_key_mismatch_is_an_error_never_drift(host):
    # Drift would be "healed" by `pulumi up`, which would send the pulls to whoever answered.
    props = reader_props(host, EXPECTED)
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSFUFB5Nwm1tqlDzcD0Qr9hKTIZJ2IMRDPCSnDyK8HM"
    props["transport"] = dict(props["transport"], host_key=other)
    for call in (lambda: provider.read("id", props), lambda: provider.create(props),
                 lambda: provider.update("id", props, props)):
        with pytest.raises(PermissionError, match="host gpu-test: SSH host key mismatch") as caught:
            call()
        assert other in str(caught.value) and "the host offered ssh-ed25519" in str(caught.value)
    props["transport"] = host.transport("gpu-test", pin_host_key=True)
    assert provider.read("id", props).outs["status"] == "drift"  # nothing pulled yet: a real answer


def test_an_unpinned_host_is_refused_unless_waived(host):
    transport = host.transport("gpu-test", pin_host_key=False)
    with pytest.raises(PermissionError, match="no pinned SSH host key"):
        provider.run(transport, "true", "", timeout=30)
    waived = dict(transport, unpinned_host_key_waiver="lab hosts are reinstalled nightly")
    assert provider.run(waived, "true", "", timeout=30)[0] == 0


def test_a_command_that_closes_its_output_and_keeps_running_is_bounded(host):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not exit within 3 s"):
        provider.run(host.transport("gpu-test"), "exec >/dev/null 2>&1 </dev/null; sleep 40", "", timeout=3)
    assert time.monotonic() - started < 20


# --- the install step and the pulls as the stack declares them -------------------------------------

def new_pull_key(tmp_path: Path) -> tuple[str, str]:
    """An ED25519 key pair like the stack's `models-pull-key` (OpenSSH private key, public line)."""
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "pull_key")], check=True)
    public = " ".join((tmp_path / "pull_key.pub").read_text().split()[:2])
    return (tmp_path / "pull_key").read_text(), f"restrict {public} litellm-gateway-prod-pulls"


def install(host, authorized: str, pulls=FAST, name="gpu-test"):
    """`models-install-<host>`: the operator's key, the script on stdin."""
    return provider.run(host.transport(name), install_command("prod", authorized),
                        render_host_script(name, 11434, pulls), timeout=60)


def pull_as_declared(host, key: str, tag: str, digest=None, name="gpu-test"):
    """`models-pull-<host>-<model>`: the stack's pull key, no stdin, the installed script."""
    return provider.run(host.transport(name, private_key=key),
                        pull_command(tag, digest, environment="prod", host=name), "", timeout=120)


def test_the_install_step_ships_the_script_and_authorizes_the_pull_key_once(host, tmp_path):
    key, authorized = new_pull_key(tmp_path)
    code, out, err = install(host, authorized)
    assert code == 0 and "OLLAMA_SCRIPT_INSTALLED" in out, err
    script = host.home / ".litellm-gateway" / "prod" / "ollama-models.sh"
    assert script.read_text() == render_host_script("gpu-test", 11434, FAST)
    assert oct(script.stat().st_mode & 0o777) == "0o700"
    assert install(host, authorized)[0] == 0, "idempotent"
    lines = (host.home / ".ssh" / "authorized_keys").read_text().splitlines()
    assert lines == [authorized], "one line, added once"
    # The pull key works with real sshd's `restrict` option, and runs the installed script.
    code, out, err = pull_as_declared(host, key, "llama3.1:8b", "46e0c10c039e")
    assert code == 0 and out.strip().endswith("status=pulled"), err
    code, out, _ = pull_as_declared(host, key, "llama3.1:8b", "46e0c10c039e")
    assert out.strip().endswith("status=present") and host.state()["pulls"] == 1


def test_a_pull_key_that_was_never_authorized_is_refused(host, tmp_path):
    key, _ = new_pull_key(tmp_path)
    import paramiko

    # sshd refuses the key itself: paramiko's authentication failure, not a host-key or connection error.
    with pytest.raises(paramiko.AuthenticationException, match="Authentication failed"):
        pull_as_declared(host, key, "llama3.1:8b")
    assert host.state().get("pulls", 0) == 0


def test_new_retry_settings_reach_the_next_pull_without_touching_the_pulls(host, tmp_path):
    key, authorized = new_pull_key(tmp_path)
    assert install(host, authorized)[0] == 0
    host.set_state(fail={"mode": "transient", "remaining": 4})
    code, _, err = pull_as_declared(host, key, "qwen2.5:0.5b")
    assert code == EXIT_CODES["pull-failed"] and "gave up after 3 attempt(s)" in err
    # retries 3 -> 6: the install step ships the new script; the same pull command now succeeds.
    more = ModelPullSettings(retries=6, backoff_seconds=0, attempt_timeout_seconds=10, timeout_seconds=60)
    assert install(host, authorized, pulls=more)[0] == 0
    host.set_state(fail={"mode": "transient", "remaining": 2})
    code, out, err = pull_as_declared(host, key, "qwen2.5:0.5b")
    assert code == 0 and out.strip().endswith("status=pulled"), err


def test_a_host_that_lost_the_script_says_how_to_ship_it_again(host, tmp_path):
    key, authorized = new_pull_key(tmp_path)
    assert install(host, authorized)[0] == 0
    (host.home / ".litellm-gateway" / "prod" / "ollama-models.sh").unlink()  # the host was reinstalled
    code, _, err = pull_as_declared(host, key, "llama3.1:8b")
    assert code == EXIT_CODES["script-missing"]
    assert "cause=script-missing" in err and "models-install-gpu-test" in err and "--target-replace" in err


def test_the_reader_prunes_only_tags_that_left_the_hosts_list(host):
    for want in EXPECTED.values():
        assert run_script(host, stdin_command("pull", want["tag"], want["digest"]))[0] == 0
    olds = provider.create(reader_props(host, EXPECTED)).outs
    only_llama = {"llama": EXPECTED["llama"]}
    kept = provider.update("ollama-models-gpu-test", olds, {**reader_props(host, only_llama), "prune": False}).outs
    assert kept["pruned"] == [] and "qwen2.5:0.5b" in host.state()["models"]
    pruned = provider.update("ollama-models-gpu-test", olds, {**reader_props(host, only_llama), "prune": True}).outs
    assert pruned["pruned"] == ["qwen2.5:0.5b"] and pruned["status"] == "in-sync"
    assert list(host.state()["models"]) == ["llama3.1:8b"]
    # A renamed model on the same tag, or a transport change: nothing is pruned.
    renamed = {"llama-renamed": EXPECTED["llama"]}
    again = provider.update("ollama-models-gpu-test", pruned, {**reader_props(host, renamed), "prune": True}).outs
    assert again["pruned"] == [] and list(host.state()["models"]) == ["llama3.1:8b"]
    assert provider.delete("ollama-models-gpu-test", again) is None and list(host.state()["models"]) == ["llama3.1:8b"]
