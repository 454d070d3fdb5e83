# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order of a deployment's containers, and running them in that order on a bounded set of threads.

    check_graph(names, depends_on)       unknown names, self-dependencies, cycles -> ValidationError (all found)
    run_ordered(names, before, work, workers)
                                         each name once its ``before`` names succeeded, up to ``workers`` at a time;
                                         a name whose predecessor failed (or was skipped) is skipped, with why

Why threads, not processes: a container task mostly waits (runc, conmon, a stop's grace period, the kernel);
Python releases the GIL there. The runtime library is safe for concurrent tasks on different containers:
per-container flock()s (one open file description per call, so they exclude threads of one process as they
exclude processes), the network registry's and the image store's flock()s likewise, subprocesses with
``close_fds=True`` and pipes that are close-on-exec (one launch's sync pipe never reaches another's conmon),
namespaces entered in threads of their own, and the volumes lock re-entrant per thread only.
"""

from __future__ import annotations

import threading

from ._runtime.errors import RuncibleError, ValidationError

OK, FAILED, SKIPPED = 'ok', 'failed', 'skipped'


def check_graph(names, depends_on):
    """``names`` (in their declared order) and ``depends_on`` {name: [names]}: raise ValidationError naming every
    unknown or repeated dependency and every cycle (as ``a -> b -> a``)."""
    known = set(names)
    problems = []
    for name in names:
        wanted = depends_on.get(name) or []
        for other in wanted:
            if other == name:
                problems.append('%s depends on itself' % name)
            elif other not in known:
                problems.append('%s depends on %s, which is not a container of the deployment (known: %s)'
                                % (name, other, ', '.join(names)))
        repeated = sorted(set(other for other in wanted if wanted.count(other) > 1))
        if repeated:
            problems.append('%s names %s more than once in depends_on' % (name, ', '.join(repeated)))
    if not problems:
        problems.extend('depends_on has a cycle: %s' % ' -> '.join(cycle) for cycle in find_cycles(names, depends_on))
    if problems:
        raise ValidationError('; '.join(problems))


def find_cycles(names, depends_on):
    """The cycles of the graph, each once, as [a, b, ..., a] (depth-first, in declared order)."""
    state = {}
    cycles = []
    seen = set()
    for start in names:
        if start in state:
            continue
        stack = [(start, iter(depends_on.get(start) or []))]
        trail = [start]
        state[start] = 'open'
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                state[node] = 'done'
                stack.pop()
                trail.pop()
                continue
            if state.get(nxt) == 'open':
                cycle = trail[trail.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif nxt not in state:
                state[nxt] = 'open'
                trail.append(nxt)
                stack.append((nxt, iter(depends_on.get(nxt) or [])))
    return cycles


def reverse(names, before):
    """``before`` turned around: {name: the names that had it in their ``before``} (stop dependants first)."""
    result = dict((name, []) for name in names)
    for name in names:
        for other in before.get(name) or []:
            if other in result:
                result[other].append(name)
    return result


def run_ordered(names, before, work, workers):
    """Run ``work(name)`` for every name once the names of ``before[name]`` (those in ``names``) succeeded.

    -> {name: (OK, work's result) | (FAILED, exception) | (SKIPPED, reason)}. Independent names run at once,
    up to ``workers`` threads (1: in this thread, in declared order). A failure never stops the others; the
    names after a failed or skipped one are skipped, their reason naming it.
    """
    names = list(names)
    waiting = dict((name, set(other for other in before.get(name) or [] if other in names)) for name in names)
    after = reverse(names, dict((name, list(waiting[name])) for name in names))
    outcomes = {}
    ready = [name for name in names if not waiting[name]]
    finished = []  # (name, status, value) of threads, in the order they ended
    signal = threading.Condition()
    running = set()

    def settle(name, status, value):
        outcomes[name] = (status, value)
        for other in after[name]:
            if other in outcomes:
                continue
            if status != OK:
                why = '%s %s' % (name, 'failed' if status == FAILED else 'was skipped')
                settle(other, SKIPPED, 'not run: it comes after %s' % why)
                continue
            waiting[other].discard(name)
            if not waiting[other]:
                ready.append(other)

    def call(name):
        try:
            return OK, work(name)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return FAILED, exc

    def thread_main(name):
        status, value = call(name)
        with signal:
            finished.append((name, status, value))
            signal.notify()

    while len(outcomes) < len(names):
        ready.sort(key=names.index)
        if workers <= 1 or (len(names) == 1 and not running):
            if not ready:
                break  # cannot happen after check_graph(); never spin
            name = ready.pop(0)
            settle(name, *call(name))
            continue
        while ready and len(running) < workers:
            name = ready.pop(0)
            running.add(name)
            worker = threading.Thread(target=thread_main, args=(name,), name='runcible-deploy-%s' % name)
            worker.daemon = True
            worker.start()
        if not running:
            break
        with signal:
            while not finished:
                signal.wait()
            done = list(finished)
            del finished[:]
        for name, status, value in done:
            running.discard(name)
            settle(name, status, value)
    for name in names:
        outcomes.setdefault(name, (SKIPPED, 'not run: its order could not be resolved'))
    return outcomes


def failure_text(exc):
    """What a failed entry says: a RuncibleError's own message; for anything else, its type too."""
    if isinstance(exc, RuncibleError):
        return exc.msg
    return '%s: %s' % (type(exc).__name__, exc)
