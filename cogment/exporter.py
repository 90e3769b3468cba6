"""`cogment.LogExporter`: the base class of datalog services, for records kept elsewhere.

The orchestrator streams each trial's record to the project's datalog (`datalog: {type:
grpc, url: ...}` in cogment.yaml). Serve a subclass with
`cogment.GrpcServer(MyExporter, cog_settings, port=9004)` to receive it decoded: the
trial's parameters, then one `cogment.datalog.Sample` a tick, then its end. (To keep trials
in a SQLite store, `cogment datalog serve` needs no code.)
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar, Optional

if TYPE_CHECKING:
    from cogment.datalog.samples import Sample
    from cogment.hooks import TrialParameters


class LogExporter(abc.ABC):
    """Receives the record of one trial; the server makes one instance per trial.

    Calls come one at a time, in order: `trial_started` once, `sample` once for every tick
    (in tick order, and once only even when the orchestrator sent a tick again after a
    broken stream), then `trial_ended` once. Each call runs on a thread of the server's
    pool, and a slow one slows the trial down (the orchestrator queues a bounded amount,
    then waits): never a sample is dropped. An exception fails the call, and with it the
    recording (the trial ends, unless the project says `datalog: {on_failure: continue}`).

    Each trial's stream holds a thread of the server while it is open: give the server at
    least as many workers (`GrpcServer(..., max_workers=N)`) as trials run at once.

    Attributes:
        trial_id: the trial's id.
        user_id: the id the trial's starting client gave.
        end_reason: why the trial ended, once the orchestrator told (a cogment-py
            orchestrator does, before `trial_ended`); None before, or when unknown.
    """

    VERSIONS: ClassVar[dict[str, str]] = {}
    """Extra (name, version) entries the service's Version RPC reports."""

    def __init__(self, trial_id: str, user_id: str) -> None:
        self.trial_id = trial_id
        self.user_id = user_id
        self.end_reason: Optional[str] = None

    def trial_started(self, params: TrialParameters) -> None:  # noqa: B027
        """The trial starts: its parameters (after pre-trial hooks, configs decoded). Does
        nothing by default."""

    @abc.abstractmethod
    def sample(self, sample: Sample) -> None:
        """One tick of the trial: whole observations (deltas applied), actions, rewards and
        messages by actor (see `cogment.datalog.Sample`; `sample.raw` is the DatalogSample
        as sent). The trial's last sample holds the observations it ended on and no
        actions (`sample.last`)."""

    def trial_ended(self) -> None:  # noqa: B027
        """The trial is over and every one of its samples was given. Does nothing by default."""
