"""`cogment generate`: compiles a project's protos and writes its cog_settings.py.

cogment generate [--file cogment.yaml] --python_dir=DIR
python -m cogment.generate [--file cogment.yaml] --python_dir=DIR
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import pprint
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from google.protobuf import descriptor_pb2

from cogment.errors import ConfigurationError
from cogment.protoc import compile_protos
from cogment.settings import (
    ProjectSpec,
    load_spec,
)

SETTINGS_MODULE = "cog_settings"


def proto_module_name(proto_file: str) -> str:
    """`sub/city.proto` -> `sub.city_pb2`, the module grpcio-tools writes for it."""
    stem = proto_file[: -len(".proto")].replace("\\", "/").replace("-", "_")
    return stem.replace("/", ".") + "_pb2"


@contextlib.contextmanager
def _on_sys_path(*folders: str) -> Iterator[None]:
    added = [f for f in folders if f not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def _message_index(spec: ProjectSpec, descriptor_set: str) -> dict[str, tuple[str, str]]:
    """Maps every message full name the project's protos define to (module, attribute path)."""
    files = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        files.ParseFromString(f.read())
    index: dict[str, tuple[str, str]] = {}

    def walk(messages: Any, package: str, module: str, prefix: str) -> None:
        for message in messages:
            attr = f"{prefix}{message.name}"
            index[f"{package}{attr}"] = (module, attr)
            walk(message.nested_type, package, module, attr + ".")

    listed = set(spec.proto_files)
    for file_proto in files.file:
        if file_proto.name not in listed:  # only listed files get a generated module
            continue
        package = f"{file_proto.package}." if file_proto.package else ""
        walk(file_proto.message_type, package, proto_module_name(file_proto.name), "")
    return index


def _check_python_function(spec: ProjectSpec, key: str, dotted: str) -> None:
    module_name, _, function = dotted.rpartition(".")
    if module_name not in spec.python_modules:
        raise ConfigurationError(
            f"{spec.path}: {key}: module {module_name!r} is not listed under import.python"
        )
    try:
        with _on_sys_path(spec.project_dir):
            module = importlib.import_module(module_name)
    except Exception as error:
        raise ConfigurationError(
            f"{spec.path}: {key}: cannot import {module_name!r} ({type(error).__name__}: {error})"
        ) from None
    if not callable(getattr(module, function, None)):
        raise ConfigurationError(
            f"{spec.path}: {key}: module {module_name!r} has no function {function!r}"
        )


def _render(spec: ProjectSpec, index: dict[str, tuple[str, str]], out_dir: str) -> str:
    """The text of cog_settings.py."""
    modules: set[str] = set()

    def ref(key: str, name: Optional[str]) -> str:
        if name is None:
            return "None"
        if name not in index:
            raise ConfigurationError(
                f"{spec.path}: {key}: no imported proto defines a message {name!r}"
            )
        module, attr = index[name]
        modules.add(module)
        return f"{module}.{attr}"

    class_blocks = []
    for i, ac in enumerate(spec.actor_classes):
        key = f"actor_classes[{i}]"
        delta = ac.observation_delta or ac.observation_space
        apply_fn = "None"
        if ac.delta_apply_fn:
            _check_python_function(
                spec, f"{key}.observation.delta_apply_fn.python", ac.delta_apply_fn
            )
            apply_fn = ac.delta_apply_fn
        class_blocks.append(
            "    _cs.ActorClass(\n"
            f"        id={ac.id!r},\n"
            f"        config_type={ref(f'{key}.config_type', ac.config_type)},\n"
            f"        action_space={ref(f'{key}.action.space', ac.action_space)},\n"
            f"        observation_space={ref(f'{key}.observation.space', ac.observation_space)},\n"
            f"        observation_delta={ref(f'{key}.observation.delta' if ac.observation_delta else f'{key}.observation.space', delta)},\n"
            f"        observation_delta_apply_fn={apply_fn},\n"
            "    ),\n"
        )
    trial_type = ref("trial.config_type", spec.trial_config_type)
    env_type = ref("environment.config_type", spec.environment_config_type)

    project_dir = os.path.abspath(spec.project_dir)
    rel_project = os.path.relpath(project_dir, os.path.abspath(out_dir))
    path_setup = ""
    if spec.python_modules and rel_project != ".":
        path_setup = (
            "# the project's python modules (import.python) live next to cogment.yaml\n"
            f"_PROJECT_DIR = _os.path.normpath(_os.path.join(_os.path.dirname(__file__), {rel_project!r}))\n"
            "if _PROJECT_DIR not in _sys.path:\n"
            "    _sys.path.append(_PROJECT_DIR)\n\n"
        )
    imports = "".join(f"import {m}\n" for m in sorted(modules))
    imports += "".join(f"import {m}\n" for m in spec.python_modules)
    params = spec.trial_params
    params_literal = pprint.pformat(
        {
            "max_steps": params.max_steps,
            "max_inactivity": params.max_inactivity,
            "trial_config": params.trial_config,
            "environment": {
                "endpoint": params.environment_endpoint,
                "config": params.environment_config,
            },
            "actors": [
                {"actor_class": a.actor_class, "endpoint": a.endpoint, "config": a.config}
                for a in params.actors
            ],
        },
        indent=4,
        sort_dicts=False,
        width=96,
    )
    datalog = (
        f"_cs.DatalogSettings(type={spec.datalog_type!r}, url={spec.datalog_url!r})"
        if spec.datalog_type
        else "None"
    )
    return (
        f'"""Settings of the project {project_dir}/cogment.yaml.\n\n'
        'Generated by `cogment generate`; do not edit, run it again instead.\n"""\n\n'
        "import os as _os\nimport sys as _sys\n\n"
        "import cogment.settings as _cs\nfrom cogment.delta import actions_table_type, observations_table_type\n\n"
        f"{path_setup}"
        f"{imports}\n"
        f"project_file = {spec.path!r}\n\n"
        "actor_classes = _cs.ActorClassList(\n" + "".join(class_blocks) + ")\n\n"
        f"trial = _cs.TrialSettings(config_type={trial_type})\n"
        f"environment = _cs.EnvironmentSettings(config_type={env_type})\n\n"
        f"pre_hooks = {list(spec.pre_hooks)!r}\n"
        f"datalog = {datalog}\n\n"
        f"default_trial_params = _cs.make_default_trial_params_from_dict(\n    {params_literal.replace(chr(10), chr(10) + '    ')},\n"
        "    actor_classes,\n    trial,\n    environment,\n    source=project_file,\n)\n\n"
        "ActionsTable = actions_table_type(actor_classes)\n"
        "ObservationsTable = observations_table_type(actor_classes)\n"
    )


def generate(yaml_path: str, python_dir: str) -> str:
    """Compiles the project's protos into `python_dir` and writes cog_settings.py there.

    Files are written only once everything checked out. Returns the path of cog_settings.py.

    Raises:
        ConfigurationError: one line naming the file, the key and what is wrong.
    """
    spec = load_spec(yaml_path)
    os.makedirs(python_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        index: dict[str, tuple[str, str]] = {}
        if spec.proto_files:
            descriptors = os.path.join(staging, "descriptors.pb")
            compile_protos(
                list(spec.proto_files), [spec.project_dir], staging, descriptor_set_out=descriptors
            )
            index = _message_index(spec, descriptors)
            os.remove(descriptors)
        text = _render(spec, index, python_dir)
        with open(os.path.join(staging, f"{SETTINGS_MODULE}.py"), "w", encoding="utf-8") as f:
            f.write(text)
        # a last check: the settings import and the default trial parameters fit their types
        _import_settings(staging, spec)
        for root, _dirs, names in os.walk(staging):
            target_root = os.path.join(python_dir, os.path.relpath(root, staging))
            os.makedirs(target_root, exist_ok=True)
            for name in names:
                shutil.copy(os.path.join(root, name), os.path.join(target_root, name))
    return os.path.join(python_dir, f"{SETTINGS_MODULE}.py")


def _import_settings(folder: str, spec: ProjectSpec) -> types.ModuleType:
    """Imports `folder`/cog_settings.py under a private name, leaving sys.modules as it was."""
    saved = dict(sys.modules)
    try:
        with _on_sys_path(folder, spec.project_dir):
            spec_ = importlib.util.spec_from_file_location(
                "_cogment_check_settings", os.path.join(folder, f"{SETTINGS_MODULE}.py")
            )
            assert spec_ is not None and spec_.loader is not None
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
            return module
    finally:
        for name in list(sys.modules):
            if name not in saved:
                del sys.modules[name]


def load_settings(yaml_path: str, cache_dir: Optional[str] = None) -> types.ModuleType:
    """Generates a project's settings into `cache_dir` (a temporary folder by default) and
    imports them: what the orchestrator does when given a cogment.yaml."""
    folder = cache_dir or tempfile.mkdtemp(prefix="cogment-settings-")
    generate(yaml_path, folder)
    spec = load_spec(yaml_path)
    for path in (folder, spec.project_dir):
        if path not in sys.path:
            sys.path.append(path)
    importlib.invalidate_caches()
    return importlib.import_module(SETTINGS_MODULE)


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="cogment generate", description="Generate cog_settings.py and the compiled protos."
    )
    parser.add_argument("--file", default="cogment.yaml", help="the project's cogment.yaml")
    parser.add_argument(
        "--python_dir",
        "--python-dir",
        dest="python_dir",
        required=True,
        help="where to write cog_settings.py and the *_pb2.py modules",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        path = generate(args.file, args.python_dir)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"generated {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
