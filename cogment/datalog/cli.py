"""`cogment datalog`: serve a store, list its trials, show one, export samples as JSON lines.

cogment datalog serve --db trials.db [--port 9004] [--host 127.0.0.1] [--max-message-mb 64]
                      [--tls-cert FILE --tls-key FILE]
cogment datalog ls trials.db
cogment datalog show trials.db [TRIAL_ID] [--file cogment.yaml] [--full]
cogment datalog export trials.db [TRIAL_ID ...] --jsonl out.jsonl [--file cogment.yaml]

`show` and `export` decode samples with the project's types: its cogment.yaml is `--file`,
else ./cogment.yaml, else the one next to the store. A trial id may be shortened to any
prefix only one trial has; `show` without one shows the latest trial.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Optional, TextIO

from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from cogment.constants import DEFAULT_MAX_MESSAGE_MB
from cogment.endpoint import host_port
from cogment.errors import ConfigurationError, DatalogError
from cogment.settings import DEFAULT_MAX_QUEUE_BYTES

from .reader import Datalog, RecordedTrial, open_datalog
from .samples import Sample

DEFAULT_PORT = 9004
WIDTH = 100  # characters of an observation or action `show` prints (--full: everything)


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds `serve`, `ls`, `show` and `export` to `parser`."""
    commands = parser.add_subparsers(dest="datalog_command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser(
        "serve",
        help="a LogExporter service writing every trial into a SQLite store",
        description="Serve cogment.LogExporter: orchestrators with `datalog: {type: grpc, "
        "url: grpc://host:PORT}` record their trials into the store.",
    )
    serve.add_argument("--db", required=True, help="the SQLite store (created when missing)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (9004; 0: free)")
    serve.add_argument("--host", default="127.0.0.1", help="interface (127.0.0.1)")
    serve.add_argument(
        "--max-queue-bytes",
        type=int,
        default=DEFAULT_MAX_QUEUE_BYTES,
        help="bytes of samples waiting to be written before the streams wait",
    )
    serve.add_argument(
        "--max-message-mb",
        type=float,
        default=DEFAULT_MAX_MESSAGE_MB,
        help=f"the largest sample accepted, in MiB ({DEFAULT_MAX_MESSAGE_MB:g})",
    )
    serve.add_argument(
        "--tls-cert", metavar="FILE", help="serve TLS with this PEM certificate; needs --tls-key"
    )
    serve.add_argument(
        "--tls-key", metavar="FILE", help="the PEM private key of --tls-cert (unencrypted)"
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    ls = commands.add_parser("ls", help="one line per trial", description="List the trials.")
    ls.add_argument("db", help="the SQLite store")
    show = commands.add_parser("show", help="a trial, tick by tick", description="Show a trial.")
    show.add_argument("db", help="the SQLite store")
    show.add_argument("trial_id", nargs="?", help="the trial (default: the latest)")
    show.add_argument("--file", help="the project's cogment.yaml (to decode the samples)")
    show.add_argument("--full", action="store_true", help="print observations whole")
    export = commands.add_parser(
        "export",
        help="decoded samples as JSON lines",
        description="Write decoded samples as JSON lines, one a tick (pandas.read_json("
        "path, lines=True) reads them).",
    )
    export.add_argument("db", help="the SQLite store")
    export.add_argument("trial_ids", nargs="*", metavar="TRIAL_ID", help="default: every trial")
    export.add_argument("--jsonl", required=True, metavar="PATH", help="output file (- : stdout)")
    export.add_argument("--file", help="the project's cogment.yaml (to decode the samples)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Runs `cogment datalog COMMAND`; 0 on success, 1 on an error (printed on one line)."""
    try:
        if args.datalog_command == "serve":
            return _serve(args)
        if args.datalog_command == "ls":
            with open_datalog(args.db) as log:
                _list(log, sys.stdout)
            return 0
        settings = _project(args.file, args.db, required=args.datalog_command == "export")
        with open_datalog(args.db, settings) as log:
            if args.datalog_command == "show":
                _show(log, args.trial_id, args.full, sys.stdout)
            else:
                _export(log, args.trial_ids, args.jsonl)
        return 0
    except BrokenPipeError:  # `... | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more to print
        return 0
    except (DatalogError, ConfigurationError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _project(file: Optional[str], db: str, required: bool) -> Any:
    """The project's settings: from --file, ./cogment.yaml, or the one next to the store."""
    candidates = (
        [file] if file else ["cogment.yaml", os.path.join(os.path.dirname(db), "cogment.yaml")]
    )
    for path in candidates:
        if path and os.path.isfile(path):
            from cogment.generate import load_settings

            return load_settings(path)
    if file:
        raise ConfigurationError(f"{file}: no such file")
    if required:
        raise ConfigurationError(
            "decoding samples needs the project: give its cogment.yaml with --file"
        )
    return None


# --------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not 0 <= args.port < 65536:
        raise ConfigurationError(f"--port: not a port number: {args.port}")
    if args.max_message_mb <= 0 or args.max_queue_bytes < 1024:
        raise ConfigurationError("--max-message-mb must be > 0, --max-queue-bytes >= 1024")

    async def main() -> None:
        from .exporter import DatalogServer

        server = DatalogServer(
            args.db,
            args.max_queue_bytes,
            args.max_message_mb,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            tls_names=("--tls-cert", "--tls-key"),
        )
        port = await server.start(args.host, args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        store = os.path.abspath(args.db)
        where = ("grpcs://" if server.tls else "") + host_port(args.host, port)
        print(f"datalog listening on {where} (store: {store})", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    return 0


# --------------------------------------------------------------------------- ls


def _when(moment: Optional[datetime.datetime]) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _state(trial: RecordedTrial) -> str:
    if trial.running:
        return "running"
    text = f"failed: {trial.end_reason}" if trial.failed else str(trial.end_reason)
    if trial.samples_lost:
        text += f" ({trial.samples_lost} samples lost)"
    elif trial.cut_short:
        text += " (cut short)"
    return text


def _list(log: Datalog, out: TextIO) -> None:
    trials = log.trials()
    rows = [("TRIAL", "USER", "STARTED", "TICKS", "END")]
    rows += [(t.id, t.user_id or "-", _when(t.started_at), str(t.ticks), _state(t)) for t in trials]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2])]
        cells += [row[3].rjust(widths[3]), row[4]]
        print("  ".join(cells).rstrip(), file=out)
    if not trials:
        print("(no trials)", file=out)


# --------------------------------------------------------------------------- show


def _one_line(message: Optional[Message], full: bool) -> str:
    if message is None:
        return "-"
    text = text_format.MessageToString(message, as_one_line=True) or "{}"
    if not full and len(text) > WIDTH:
        text = text[: WIDTH - 3] + "..."
    return text


def _payload(message: Any) -> Optional[Message]:
    """A message's payload unpacked with the project's types (None when unknown)."""
    from google.protobuf import symbol_database

    name = message.payload.type_url.rpartition("/")[2]
    try:
        payload_type = symbol_database.Default().GetSymbol(name)
    except KeyError:
        return None
    payload = payload_type()
    return payload if message.payload.Unpack(payload) else None


def _show(log: Datalog, trial_id: Optional[str], full: bool, out: TextIO) -> None:
    if trial_id:
        trial = log.trial(trial_id)
    else:
        trials = log.trials()
        if not trials:
            raise DatalogError(f"{log.path}: no trials")
        trial = trials[-1]
    print(f"trial {trial.id} (user {trial.user_id or '-'})", file=out)
    ended = "running" if trial.running else f"ended {_when(trial.ended_at)}: {_state(trial)}"
    print(f"  started {_when(trial.started_at)}, {trial.ticks} ticks, {ended}", file=out)
    params = trial.raw_params
    actors = []
    index: dict[str, int] = {}
    for actor in params.actors:
        i = index[actor.actor_class] = index.get(actor.actor_class, -1) + 1
        actors.append(f"{actor.actor_class}[{i}]")
    print(
        f"  actors: {', '.join(f'{a} ({p.endpoint})' for a, p in zip(actors, params.actors))}",
        file=out,
    )
    if log.settings is None:
        print("  (no cogment.yaml found: samples shown undecoded; give one with --file)", file=out)
        for tick_id, raw in trial.raw_samples():
            sizes = [len(d.content) for d in raw.observations.observations]
            print(
                f"tick {tick_id}: observations of {sizes} bytes, {len(raw.actions)} actions",
                file=out,
            )
        return
    for sample in trial.samples():
        _show_sample(sample, actors, full, out)


def _show_sample(sample: Sample, actors: list[str], full: bool, out: TextIO) -> None:
    moment = datetime.datetime.fromtimestamp(sample.timestamp / 1e9).strftime("%H:%M:%S.%f")[:-3]
    print(f"tick {sample.tick_id} ({moment}){' the end' if sample.last else ''}", file=out)
    width = max(len(a) for a in actors) if actors else 0
    for actor_id, name in enumerate(actors):
        reward = sample.rewards[actor_id]
        parts = [name.ljust(width)]
        if not sample.last:
            parts.append(f"action {_one_line(sample.actions[actor_id], full)}")
        if reward is not None:
            parts.append(f"reward {reward.value:+.2f} ({len(reward.feedbacks)} feedbacks)")
        parts.append(f"observation {_one_line(sample.observations[actor_id], full)}")
        print("  " + "  ".join(parts), file=out)
    for message in sample.messages:
        payload = _payload(message)
        what = (
            f"{payload.DESCRIPTOR.full_name} {_one_line(payload, full)}"
            if payload is not None
            else message.payload.type_url
        )
        print(f"  message {message.sender_id} -> {message.receiver_id}: {what}", file=out)


# --------------------------------------------------------------------------- export


def _to_dict(message: Optional[Message]) -> Any:
    if message is None:
        return None
    try:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    except (TypeError, KeyError):  # an Any of a type the project does not know
        return {
            "@type": getattr(message, "type_url", type(message).__name__),
            "value": base64.b64encode(message.SerializeToString()).decode(),
        }


def _by_class(values: Iterable[Any], classes: Sequence[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for value, class_id in zip(values, classes):
        grouped.setdefault(class_id, []).append(_to_dict(value))
    return grouped


def sample_record(sample: Sample, classes: Sequence[str]) -> dict[str, Any]:
    """One JSON line of `export`: a tick's decoded sample, by actor class."""
    return {
        "trial_id": sample.trial_id,
        "user_id": sample.user_id,
        "tick_id": sample.tick_id,
        "timestamp": sample.timestamp,
        "observations": _by_class(sample.observations, classes),
        "actions": _by_class(sample.actions, classes),
        "rewards": _by_class(sample.rewards, classes),
        "messages": [_message_dict(m) for m in sample.messages],
    }


def _message_dict(message: Any) -> dict[str, Any]:
    """A message, its payload unpacked (its type under "@type", as JSON writes an Any)."""
    payload = _payload(message)
    if payload is None:
        content = _to_dict(message.payload)
    else:
        content = {"@type": payload.DESCRIPTOR.full_name, **_to_dict(payload)}
    return {"sender_id": message.sender_id, "receiver_id": message.receiver_id, "payload": content}


def _export(log: Datalog, trial_ids: Sequence[str], path: str) -> None:
    trials = [log.trial(t) for t in trial_ids] if trial_ids else log.trials()
    out: TextIO
    with contextlib.ExitStack() as stack:
        out = sys.stdout if path == "-" else stack.enter_context(open(path, "w", encoding="utf-8"))
        count = 0
        for trial in trials:
            classes = [a.actor_class for a in trial.raw_params.actors]
            for sample in trial.samples():
                out.write(json.dumps(sample_record(sample, classes)) + "\n")
                count += 1
    if path != "-":
        plural = "" if len(trials) == 1 else "s"
        print(f"{count} samples of {len(trials)} trial{plural} written to {path}")
