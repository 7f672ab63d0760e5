"""One ``docker build`` through the engine's API, reporting Dockerfile steps as progress."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import docker
from docker.errors import APIError

from trenv.images.engine import image_id as local_image_id
from trenv.images.errors import ImageError
from trenv.images.progress import ProgressCallback, no_progress

# The classic builder of engine 20.10 announces each instruction as "Step N/M : ...".
_STEP = re.compile(r"^Step (\d+)/(\d+) :")


def run_build(
    client: docker.DockerClient,
    *,
    context: Path,
    tag: str,
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    stage: str,
    progress: ProgressCallback = no_progress,
    nocache: bool = False,
) -> str:
    """Build ``context``/Dockerfile as ``tag``; returns the image id.

    Never pulls: no registry is reachable and every ``FROM`` names a local image. Intermediate
    containers are always removed, also after a failed step.
    """
    log: deque[str] = deque(maxlen=40)
    image_id: str | None = None
    steps = 1
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            buildargs=dict(buildargs or {}),
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                log.append(str(chunk["error"]))
                raise ImageError(
                    f"building {tag} failed: {chunk['error'].strip()}\n"
                    + "".join(line if line.endswith("\n") else line + "\n" for line in log),
                    f"Fix the failing step in {context / 'Dockerfile'} and build again.",
                )
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            text = chunk.get("stream")
            if not text:
                continue
            log.append(text)
            step = _STEP.match(text)
            if step:
                # Step N starts now, so N-1 steps are complete.
                steps = int(step.group(2))
                progress(stage, int(step.group(1)) - 1, steps)
    except APIError as exc:
        raise ImageError(
            f"the Docker engine refused to build {tag}: {exc.explanation or exc}",
            f"Check {context / 'Dockerfile'} and that its FROM images exist locally.",
        ) from exc
    # The id the engine reported for this build is the answer; the tag is only a fallback,
    # because a concurrent build of the same tag (another test session, a second operator)
    # may already have moved it.
    built = image_id or local_image_id(client, tag)
    progress(stage, steps, steps)
    return built
