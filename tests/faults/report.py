"""The fault run's figures, kept here by the run and printed by conftest.py at the end of pytest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.faults.test_faults import Run

LINES: list[str] = []


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def record(run: Run, seconds: float) -> None:
    from tests.faults.test_faults import HANG, first_200_after, limit_bound

    header = ["fault", "requests", "2xx", "503", "no-RA", "5xx", "refused", "transport", "worst s", "first 200 s"]
    rows = [header]
    for fault in run.faults:
        during = [s for s in run.samples if fault.start <= s.start < fault.end]
        within = [s for s in during if s.start < fault.recovered and s.status and s.kind != "sse"]
        worst = max((s.end - s.start for s in within), default=0.0)
        firsts = [first_200_after(run, fault, name) for name in ("a", "b")]
        first = "-" if None in firsts else f"{max(f for f in firsts if f is not None):.2f}"
        rows.append(
            [
                fault.name,
                str(len(during)),
                str(sum(200 <= s.status < 300 for s in during)),
                str(sum(s.status == 503 for s in during)),
                str(sum(s.status == 503 and not s.retry_after for s in during)),
                str(sum(s.status >= 500 and s.status != 503 for s in during)),
                str(sum(s.status == 0 for s in during)),
                str(sum(s.status == -1 for s in during)),
                f"{worst:.2f}" + ("!" if worst > HANG else ""),
                first,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    LINES.clear()
    LINES.append(f"fault run: {seconds:.0f} s, {len(run.samples)} requests, two instances, own PostgreSQL and Redis")
    LINES.extend(_row(r, widths) for r in rows)
    failed = [s for s in run.samples if (s.status >= 500 and s.status != 503) or s.status == -1]
    LINES.append(f"5xx other than 503, or a broken connection, over the whole run: {len(failed)}")
    for s in failed[:5]:
        fault = next((f.name for f in run.faults if f.start <= s.start < f.end), "steady")
        LINES.append(
            f"  {fault}: {s.kind} on {s.instance}: {s.status if s.status > 0 else 'transport'}: {s.error[:150]}"
        )
    lost = sum(1 for k in run.acknowledged if run.written.get(k, 0) == 0)
    duplicated = sum(1 for n in run.written.values() if n > 1)
    LINES.append(
        f"writes: {len(run.attempted)} attempted, {len(run.acknowledged)} acknowledged, "
        f"{lost} lost, {duplicated} duplicated"
    )
    LINES.append(
        f"change feed: {len(run.feed)} changes delivered, change log {len(run.logged)}, equal: {run.feed == run.logged}"
    )
    for name, got, resumes in (("SSE", run.sse, run.sse_resumes), ("GraphQL", run.graphql, run.graphql_resumes)):
        missing = len(set(run.expected) - set(got))
        LINES.append(
            f"{name} subscriber: {len(got)} events of {len(run.expected)} changes, {resumes} resumes, "
            f"{missing} missing, {len(got) - len(set(got))} duplicated, in order: {got == sorted(got)}"
        )
    for phase in run.limits:
        LINES.append(
            f"rate limit through {phase.name}: {phase.allowed} allowed, {phase.refused} refused in "
            f"{phase.elapsed:.1f} s at {phase.rate}/min (bound {limit_bound(phase)})"
        )
    LINES.append(f"SIGTERM exit codes: {run.exit_codes}")
    if run.log_errors:
        LINES.append("instance logs (first error lines):")
        LINES.extend(f"  {line[:200]}" for line in run.log_errors[:100])
