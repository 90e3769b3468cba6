"""The store's writes, straight on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from cogment.datalog import store


def test_a_large_batch_is_written_whole_in_order(tmp_path: Path) -> None:
    connection = store.open_store(tmp_path / "trials.db", readonly=False)
    try:
        rows: list[store.Operation] = [store.TrialBegin("t", "u", b"", 1)]
        # 600 samples in one transaction, one of them in parts, one a duplicate
        rows += [store.SampleRow("t", tick, tick, b"%d" % tick) for tick in range(600)]
        rows += [store.SampleRow("t", 600, 600, [b"6", b"00"])]
        rows += [store.SampleRow("t", 5, 5, b"a second tick 5 is ignored")]
        rows += [store.TrialEnd("t", 700, "over", False, 601, 601)]
        store.write(connection, rows)
        samples = list(store.read_samples(connection, "t"))
        assert [sample for _tick, _at, sample in samples] == [b"%d" % tick for tick in range(601)]
        trial = store.read_trial(connection, "t")
        assert trial is not None and trial.samples_lost == 0
    finally:
        connection.close()
