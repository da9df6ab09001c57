"""Finding a cycle among stages, jobs, workflows or pipeline nodes that need each other.

Every format with a graph (dvc.yaml stages, Gradient jobs, dstack workflows,
Valohai pipeline nodes) refuses a cycle with an error naming it; this finds
it, and each format words the error and places it in its own file.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Mapping


def find_cycle(needs: Mapping[str, Iterable[str]]) -> tuple[str, list[str]] | None:
    """The first cycle a depth-first walk of `needs` (node -> the nodes it needs,
    walked in order) meets: the node whose need closes it, and the cycle from the
    node needed again round to it (`[a, b, a]`); None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path; 2: done, no cycle through it

    def visit(node: str, path: list[str]) -> tuple[str, list[str]] | None:
        state[node] = 1
        for up in needs.get(node, ()):
            if state.get(up) == 1:
                return node, path[path.index(up):] + [up]
            if up not in state:
                found = visit(up, path + [up])
                if found:
                    return found
        state[node] = 2
        return None

    for node in needs:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None
