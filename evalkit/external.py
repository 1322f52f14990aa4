"""Scoring responses produced elsewhere: ``evalkit score --task TASK --responses FILE.jsonl``.

Each line is a JSON object with the sample ``id`` (IFEval's ``key`` is accepted too) or the
``prompt`` text, and the ``response``. Responses are matched to the task's samples, scored by
the task's own scoring code, and returned with per-sample scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.data import DataLayer, iter_jsonl
from evalkit.errors import BadInput
from evalkit.registry import load_task
from evalkit.types import Generation, LoglikRequest, ScoredTask, ScoringContext


def score_responses(task_name: str, responses: Path, data_dir: Path | None = None,
                    options: dict[str, Any] | None = None, seed: int = 0
                    ) -> tuple[Any, list[str], ScoredTask]:
    """(task, matched sample ids, scores) for a responses file."""
    task = load_task(task_name)
    samples = task.samples(DataLayer(data_dir))
    by_id = {s.id: s for s in samples}
    by_prompt: dict[str, str] = {}
    for s in samples:
        for chat in (False, True):
            for r in task.requests(s, chat):
                if not isinstance(r, LoglikRequest) and isinstance(r[0], str):
                    by_prompt.setdefault(r[0].strip(), s.id)
        if isinstance(s.data.get("prompt"), str):
            by_prompt.setdefault(s.data["prompt"].strip(), s.id)
    chosen: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in enumerate(iter_jsonl(Path(responses)), 1):
        resp = obj.get("response")
        if not isinstance(resp, str):
            raise BadInput(f"{responses}:{lineno}: needs a string 'response' field")
        sid = obj.get("id", obj.get("key"))
        if sid is not None:
            sid = str(sid)
            if sid not in by_id:
                raise BadInput(f"{responses}:{lineno}: unknown sample id {sid!r} for task "
                               f"{task.name} (ids look like {samples[0].id!r})")
        elif isinstance(obj.get("prompt"), str):
            sid = by_prompt.get(obj["prompt"].strip())
            if sid is None:
                raise BadInput(f"{responses}:{lineno}: prompt does not match any sample of "
                               f"{task.name}; give the sample 'id' instead")
        else:
            raise BadInput(f"{responses}:{lineno}: needs an 'id' (or 'key') or a 'prompt'")
        if sid in chosen:
            raise BadInput(f"{responses}:{lineno}: sample {sid!r} is answered twice (line "
                           f"{first_line[sid]} too); keep one response per sample")
        chosen[sid] = resp
        first_line[sid] = lineno
    if not chosen:
        raise BadInput(f"{responses}: no responses found; write one JSON object per line")
    picked = [s for s in samples if s.id in chosen]
    outputs = []
    for s in picked:
        n_req = len(task.requests(s, False))
        outputs.append([Generation((chosen[s.id],))] * max(1, n_req))
    scored = task.score(picked, outputs, ScoringContext(options=options or {},
                                                        data=DataLayer(data_dir), seed=seed))
    return task, [s.id for s in picked], scored
