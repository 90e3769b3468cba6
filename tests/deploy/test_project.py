"""deploy/city/cogment.yaml: the city project as the cluster runs it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from cogment import cli
from cogment.cogment_yaml import ProjectSpec, load_spec
from cogment.endpoint import parse_grpc_endpoint
from tests.deploy.cluster import CLUSTER_YAML, DNS_SUFFIX, EXAMPLE, NAMESPACE
from tests.deploy.dockerfile import StagedImage

GENERATED = ("cog_settings.py", "*_pb2.py", "*_pb2_grpc.py", "trials.db*", "__pycache__")


def test_it_passes_cogment_generate_next_to_the_example_files(tmp_path: Path) -> None:
    project = tmp_path / "city"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copyfile(CLUSTER_YAML, project / "cogment.yaml")
    out = tmp_path / "generated"
    argv = ["generate", "--file", str(project / "cogment.yaml"), "--python_dir", str(out)]
    assert cli.main(argv) == 0
    assert (out / "city_pb2.py").is_file()
    settings = (out / "cog_settings.py").read_text()
    assert f"grpc://city-environment.{NAMESPACE}.{DNS_SUFFIX}:9002" in settings


def test_the_city_image_holds_it_as_its_project(city_image: StagedImage) -> None:
    assert city_image.path("/app/cogment.yaml").read_bytes() == CLUSTER_YAML.read_bytes()
    for generated in ("cog_settings.py", "city_pb2.py"):  # by the Dockerfile's RUN
        assert city_image.path(f"/app/{generated}").is_file(), generated


def _without_addresses(spec: ProjectSpec) -> ProjectSpec:
    params = spec.trial_params
    actors = tuple(
        a if a.endpoint == "human" else dataclasses.replace(a, endpoint="") for a in params.actors
    )
    return dataclasses.replace(
        spec,
        path="",
        pre_hooks=(),
        trial_params=dataclasses.replace(params, environment_endpoint="", actors=actors),
        datalog_type=None,
        datalog_url=None,
        datalog_path=None,
    )


def _endpoints(spec: ProjectSpec) -> list[str]:
    params = spec.trial_params
    actors = [a.endpoint for a in params.actors if a.endpoint != "human"]
    return [params.environment_endpoint, *actors, *spec.pre_hooks]


def test_it_is_the_example_project_with_the_cluster_addresses(city_image: StagedImage) -> None:
    # read where its imports are: in the image (the same file, checked above)
    cluster = load_spec(str(city_image.path("/app/cogment.yaml")))
    example = load_spec(str(EXAMPLE / "cogment.yaml"))
    assert _without_addresses(cluster) == _without_addresses(example)
    # the same services on the same ports, each at its Service's DNS name in the namespace
    pairs = list(zip(_endpoints(cluster), _endpoints(example)))
    assert len(pairs) == len(_endpoints(example)) == 4
    for in_cluster, on_one_machine in pairs:
        there = parse_grpc_endpoint(in_cluster)
        here = parse_grpc_endpoint(on_one_machine)
        assert there is not None and here is not None
        assert here.is_local and there.port == here.port and not there.secure
        service, _, domain = there.host.partition(".")
        assert service.startswith("city-") and domain == f"{NAMESPACE}.{DNS_SUFFIX}", there
    # recorded by every orchestrator into the one datalog service
    assert example.datalog_type == "sqlite"
    assert cluster.datalog_type == "grpc"
    assert cluster.datalog_url == f"grpc://city-datalog.{NAMESPACE}.{DNS_SUFFIX}:9004"
