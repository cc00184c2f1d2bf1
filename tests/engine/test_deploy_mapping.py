"""The engine harness's mapping of pulumi-docker inputs (tests/engine/deploy.py), without an engine.

The end-to-end tests beside this file run the mapping on the real engine; these pin the parts that
follow the provider's source (Go durations, the upload tar, refusing what it cannot apply) and check
that every input the example stacks declare is one the harness applies, so none is ever dropped."""

from __future__ import annotations

import io
import tarfile

import pytest

from deploy import APPLIED, CONTAINER, IMAGE, Deployment, NotApplied, go_duration_ns, upload_tar
from harness import EXAMPLE_STACKS, example_config, run_stack, unwrap_all
from images import NO_STANDIN, NoStandIn, STANDINS, repository, standin_name


@pytest.mark.parametrize("value, ns", [("5s", 5_000_000_000), ("1m30s", 90_000_000_000), ("120s", 120_000_000_000),
                                       ("250ms", 250_000_000), ("1h", 3_600_000_000_000), ("", 0), (None, 0),
                                       ("5 s", 0), ("five", 0)])
def test_healthcheck_durations_parse_as_gos_parse_duration_and_a_bad_one_is_zero(value, ns):
    assert go_duration_ns(value) == ns


@pytest.mark.parametrize("executable, permissions, mode", [(False, None, 0o644), (True, None, 0o744),
                                                           (True, "0755", 0o755), (False, "0600", 0o600)])
def test_an_upload_is_one_root_owned_tar_entry_with_the_providers_mode(executable, permissions, mode):
    data = upload_tar("/etc/app/config.yaml", b"x: 1\n", executable, permissions)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.mode, member.uid, member.gid) == ("/etc/app/config.yaml", mode, 0, 0)
        assert archive.extractfile(member).read() == b"x: 1\n"


def test_an_input_the_harness_cannot_apply_fails_before_the_engine_is_asked():
    deployment = Deployment(client=None, image_for=lambda ref: ref)  # any Docker API call would raise AttributeError
    with pytest.raises(NotApplied, match="privileged"):
        deployment._container("x", {"name": "x", "image": "sha256:0", "privileged": True}, "image")
    with pytest.raises(NotApplied, match="bindOptions"):
        deployment._create_config("x", {"name": "x", "mounts": [{"target": "/a", "type": "bind", "source": "/b",
                                                                  "bindOptions": {"propagation": "rshared"}}]}, "i")


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_container_input_of_the_example_stacks_is_applied_and_every_image_has_a_stand_in_or_a_reason(stack):
    run = run_stack(example_config(stack), stack=stack)
    for resource in run.resources:
        if resource.type == CONTAINER:
            assert set(unwrap_all(resource.inputs)) <= APPLIED, (resource.name, set(unwrap_all(resource.inputs)) - APPLIED)
        if resource.type == IMAGE:
            reference = unwrap_all(resource.inputs)["name"]
            if repository(reference) in NO_STANDIN:
                with pytest.raises(NoStandIn, match="no stand-in"):
                    standin_name(reference)
            else:
                assert standin_name(reference) in set(STANDINS.values()), reference


@pytest.mark.parametrize("reference, repo", [("postgres:16.10", "postgres"), ("docker.io/library/redis:7", "redis"),
                                             ("ghcr.io/berriai/litellm-database:main-v1.108.7-stable",
                                              "ghcr.io/berriai/litellm-database"),
                                             ("localhost:5000/haproxy:3.0@sha256:ab", "localhost:5000/haproxy"),
                                             ("prom/prometheus@sha256:00", "prom/prometheus")])
def test_an_image_reference_maps_by_repository_with_tag_and_digest_dropped(reference, repo):
    assert repository(reference) == repo


def test_an_image_without_a_stand_in_is_refused_by_name():
    with pytest.raises(NoStandIn, match="nginx"):
        standin_name("nginx:1.27")
