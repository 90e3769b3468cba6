"""`cogment generate`: compiles a project's protos and writes its cog_settings.py.

    cogment generate [--file cogment.yaml] --python_dir=DIR
    python -m cogment.generate [--file cogment.yaml] --python_dir=DIR

Everything is checked before a file is written: the types cogment.yaml names must be defined
by its imported protos, the `config:` maps of `trial_params` must fit their types, and the
delta-apply functions must exist. The check uses a private descriptor pool, so generating
never imports the project's code into the calling process.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import contextlib
import importlib
import importlib.util
import keyword
import os
import pprint
import shutil
import sys
import tempfile
import types
from collections.abc import Sequence
from typing import Any, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from cogment.cogment_yaml import ProjectSpec, load_spec
from cogment.errors import ConfigurationError
from cogment.protoc import compile_protos
from cogment.settings import (
    DEFAULT_MAX_QUEUE_BYTES,
    ActorClass,
    ActorClassList,
    EnvironmentSettings,
    TrialSettings,
    make_default_trial_params_from_dict,
)

SETTINGS_MODULE = "cog_settings"


def proto_module_name(proto_file: str) -> str:
    """`sub/city.proto` -> `sub.city_pb2`, the module grpcio-tools writes for it."""
    stem = proto_file[: -len(".proto")].replace("\\", "/").replace("-", "_")
    return stem.replace("/", ".") + "_pb2"


def _check_proto_names(spec: ProjectSpec) -> None:
    """Every imported .proto compiles to a module Python can import (`2d.proto` would be
    `import 2d_pb2`, a syntax error in the generated code)."""
    for i, proto_file in enumerate(spec.proto_files):
        module = proto_module_name(proto_file)
        if not all(
            part.isidentifier() and not keyword.iskeyword(part) for part in module.split(".")
        ):
            raise ConfigurationError(
                f"{spec.path}: import.proto[{i}]: {proto_file!r} compiles to the module "
                f"{module!r}, which Python cannot import: name the file (and its folders) "
                "with letters, digits, '_' or '-', not starting with a digit"
            )


class _ProjectTypes:
    """The messages the project's protos define: where the generated code finds each one, and
    a class of each (from a private pool) to check configs with."""

    def __init__(self, spec: ProjectSpec, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.spec = spec
        self.location: dict[str, tuple[str, str]] = {}  # full name -> (module, attribute path)
        self.used_modules: set[str] = set()
        self._pool = descriptor_pool.DescriptorPool()
        for file_proto in files.file:
            self._pool.Add(file_proto)
        listed = set(spec.proto_files)
        for file_proto in files.file:
            if file_proto.name in listed:  # only listed files get a generated module
                package = f"{file_proto.package}." if file_proto.package else ""
                self._walk(file_proto.message_type, package, proto_module_name(file_proto.name), "")

    def _walk(self, messages: Any, package: str, module: str, prefix: str) -> None:
        for message in messages:
            attr = f"{prefix}{message.name}"
            self.location[f"{package}{attr}"] = (module, attr)
            self._walk(message.nested_type, package, module, attr + ".")

    def _check(self, key: str, name: str) -> None:
        if name not in self.location:
            raise ConfigurationError(
                f"{self.spec.path}: {key}: no imported proto defines a message {name!r}"
            )

    def reference(self, key: str, name: Optional[str]) -> str:
        """The Python expression naming the class of message `name` in cog_settings.py."""
        if name is None:
            return "None"
        self._check(key, name)
        module, attr = self.location[name]
        self.used_modules.add(module)
        return f"{module}.{attr}"

    def message_class(self, key: str, name: Optional[str]) -> Any:
        """A class of message `name` from the private pool (None for None)."""
        if name is None:
            return None
        self._check(key, name)
        return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(name))


def _compile(spec: ProjectSpec, out_dir: str) -> descriptor_pb2.FileDescriptorSet:
    files = descriptor_pb2.FileDescriptorSet()
    if not spec.proto_files:
        return files
    descriptors = os.path.join(out_dir, "descriptors.pb")
    compile_protos(
        list(spec.proto_files), [spec.project_dir], out_dir, descriptor_set_out=descriptors
    )
    with open(descriptors, "rb") as f:
        files.ParseFromString(f.read())
    os.remove(descriptors)
    return files


def _module_source(spec: ProjectSpec, module_name: str) -> Optional[str]:
    """The file of a project module next to cogment.yaml (None when there is none)."""
    base = os.path.join(spec.project_dir, *module_name.split("."))
    candidates = (f"{base}.py", os.path.join(base, "__init__.py"))
    return next((path for path in candidates if os.path.isfile(path)), None)


def _check_python_modules(spec: ProjectSpec) -> None:
    """Every module of import.python is next to cogment.yaml or installed."""
    for i, module_name in enumerate(spec.python_modules):
        if _module_source(spec, module_name) is not None:
            continue
        try:
            found = importlib.util.find_spec(module_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigurationError(
                f"{spec.path}: import.python[{i}]: module {module_name!r} is neither next to "
                "cogment.yaml nor installed"
            )


def _check_python_function(spec: ProjectSpec, key: str, dotted: str) -> None:
    """Checks, without importing it, that a listed module of the project defines `function`."""
    module_name, _, function = dotted.rpartition(".")
    if module_name not in spec.python_modules:
        raise ConfigurationError(
            f"{spec.path}: {key}: module {module_name!r} is not listed under import.python"
        )
    source = _module_source(spec, module_name)
    if source is None:
        raise ConfigurationError(
            f"{spec.path}: {key}: module {module_name!r} not found next to cogment.yaml"
        )
    try:
        with open(source, encoding="utf-8") as f:
            tree = ast.parse(f.read(), source)
    except SyntaxError as error:
        raise ConfigurationError(
            f"{spec.path}: {key}: {source} line {error.lineno}: {error.msg}"
        ) from None
    defined = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    for node in tree.body:
        if isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    if function not in defined:
        raise ConfigurationError(
            f"{spec.path}: {key}: module {module_name!r} has no function {function!r}"
        )


def _check_default_params(spec: ProjectSpec, project_types: _ProjectTypes) -> None:
    """Fills the `config:` maps of trial_params into their types, as cog_settings will."""
    classes = []
    for i, ac in enumerate(spec.actor_classes):
        space = project_types.message_class(
            f"actor_classes[{i}].observation.space", ac.observation_space
        )
        classes.append(
            ActorClass(
                id=ac.id,
                action_space=project_types.message_class(
                    f"actor_classes[{i}].action.space", ac.action_space
                ),
                observation_space=space,
                observation_delta=space,
                config_type=project_types.message_class(
                    f"actor_classes[{i}].config_type", ac.config_type
                ),
            )
        )
    make_default_trial_params_from_dict(
        spec.trial_params.to_dict(),
        ActorClassList(*classes),
        TrialSettings(project_types.message_class("trial.config_type", spec.trial_config_type)),
        EnvironmentSettings(
            project_types.message_class("environment.config_type", spec.environment_config_type)
        ),
        source=spec.path,
    )


def _render(spec: ProjectSpec, types_: _ProjectTypes, out_dir: str) -> str:
    """The text of cog_settings.py."""
    ref = types_.reference
    class_blocks = []
    for i, ac in enumerate(spec.actor_classes):
        key = f"actor_classes[{i}]"
        if ac.observation_delta:
            delta = ref(f"{key}.observation.delta", ac.observation_delta)
        else:
            delta = ref(f"{key}.observation.space", ac.observation_space)
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
            f"        observation_delta={delta},\n"
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
            "_PROJECT_DIR = _os.path.normpath(\n"
            f"    _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), {rel_project!r})\n)\n"
            "if _PROJECT_DIR not in _sys.path:\n"
            "    _sys.path.append(_PROJECT_DIR)\n\n"
        )
    imports = "".join(f"import {m}\n" for m in sorted(types_.used_modules))
    imports += "".join(f"import {m}\n" for m in spec.python_modules)
    params_literal = pprint.pformat(
        spec.trial_params.to_dict(), indent=1, sort_dicts=False, width=92
    )
    datalog = _render_datalog(spec)
    indented_params = params_literal.replace("\n", "\n    ")
    return (
        f'"""Settings of the project {spec.path}.\n\n'
        'Generated by `cogment generate`; do not edit: run it again instead.\n"""\n\n'
        "import os as _os\nimport sys as _sys\n\n"
        "import cogment.settings as _cs\n"
        "from cogment.delta import actions_table_type, observation_table_type\n\n"
        f"{path_setup}"
        f"{imports}\n"
        f"project_file = {spec.path!r}\n\n"
        "# in cogment.yaml order, which fixes actor ids\n"
        "actor_classes = _cs.ActorClassList(\n" + "".join(class_blocks) + ")\n\n"
        f"trial = _cs.TrialSettings(config_type={trial_type})\n"
        f"environment = _cs.EnvironmentSettings(config_type={env_type})\n\n"
        f"pre_hooks = {list(spec.pre_hooks)!r}\n"
        f"datalog = {datalog}\n\n"
        "default_trial_params = _cs.make_default_trial_params_from_dict(\n"
        f"    {indented_params},\n"
        "    actor_classes,\n    trial,\n    environment,\n    source=project_file,\n)\n\n"
        "ActionsTable = actions_table_type(actor_classes)\n"
        "ObservationTable = observation_table_type(actor_classes)\n"
        "ObservationsTable = ObservationTable  # its name in cogment-py 0.5.0\n"
    )


def _render_datalog(spec: ProjectSpec) -> str:
    """The `datalog = ...` expression of cog_settings.py (a sqlite path relative to
    cogment.yaml is resolved against `project_file` when the settings are imported)."""
    if spec.datalog_type is None:
        return "None"
    args = [f"type={spec.datalog_type!r}"]
    if spec.datalog_type == "grpc":
        args.append(f"url={spec.datalog_url!r}")
    else:
        args.append(f"path=_os.path.join(_os.path.dirname(project_file), {spec.datalog_path!r})")
    if spec.datalog_on_failure != "end":
        args.append(f"on_failure={spec.datalog_on_failure!r}")
    if spec.datalog_max_queue_bytes != DEFAULT_MAX_QUEUE_BYTES:
        args.append(f"max_queue_bytes={spec.datalog_max_queue_bytes!r}")
    return "_cs.DatalogSettings(\n    " + ",\n    ".join(args) + ",\n)"


def generate(yaml_path: str, python_dir: str) -> str:
    """Compiles the project's protos into `python_dir` and writes cog_settings.py there.

    Files are written only once everything checked out. Returns the path of cog_settings.py.

    Raises:
        ConfigurationError: one line naming the file, the key and what is wrong.
    """
    spec = load_spec(yaml_path)
    _check_proto_names(spec)
    _check_python_modules(spec)
    with tempfile.TemporaryDirectory() as staging:
        project_types = _ProjectTypes(spec, _compile(spec, staging))
        text = _render(spec, project_types, python_dir)
        _check_default_params(spec, project_types)
        with open(os.path.join(staging, f"{SETTINGS_MODULE}.py"), "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.makedirs(python_dir, exist_ok=True)
            for root, _dirs, names in os.walk(staging):
                target_root = os.path.join(python_dir, os.path.relpath(root, staging))
                os.makedirs(target_root, exist_ok=True)
                for name in names:
                    shutil.copy(os.path.join(root, name), os.path.join(target_root, name))
        except OSError as error:
            raise ConfigurationError(
                f"{python_dir}: cannot write the generated files ({error.strerror})"
            ) from None
    return os.path.join(python_dir, f"{SETTINGS_MODULE}.py")


def import_settings(python_dir: str) -> types.ModuleType:
    """Imports the cog_settings.py that `cogment generate` wrote into `python_dir`, as
    `cog_settings` (replacing a module of that name already imported).

    `python_dir` goes on sys.path first, for the compiled protos the settings import; the
    generated file puts the project's own folder on sys.path itself.
    """
    if python_dir not in sys.path:
        sys.path.insert(0, python_dir)
    importlib.invalidate_caches()
    path = os.path.join(python_dir, f"{SETTINGS_MODULE}.py")
    spec = importlib.util.spec_from_file_location(SETTINGS_MODULE, path)
    assert spec is not None and spec.loader is not None  # a .py path always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[SETTINGS_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(SETTINGS_MODULE, None)
        raise
    return module


def load_settings(yaml_path: str, cache_dir: Optional[str] = None) -> types.ModuleType:
    """Generates a project's settings into `cache_dir` (a new temporary folder by default) and
    imports them as `cog_settings`: what the orchestrator does when given a cogment.yaml.
    A temporary folder is removed when the process exits."""
    folder = cache_dir
    if folder is None:
        folder = tempfile.mkdtemp(prefix="cogment-settings-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    generate(yaml_path, folder)
    return import_settings(folder)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of `cogment generate` to `parser`."""
    parser.add_argument("--file", default="cogment.yaml", help="the project's cogment.yaml")
    parser.add_argument(
        "--python_dir",
        "--python-dir",
        dest="python_dir",
        required=True,
        help="where to write cog_settings.py and the *_pb2.py modules",
    )


def run(args: argparse.Namespace) -> int:
    """Runs `cogment generate`; returns the process exit code."""
    try:
        path = generate(args.file, args.python_dir)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"generated {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cogment.generate",
        description="Generate cog_settings.py and the compiled protos.",
    )
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
