"""Which instruction set MindSpore's bundled oneDNN may use on this CPU, settled before MindSpore loads.

Why: MindSpore 2.10 ships oneDNN 3.10 with its threadpool runtime, and on CPUs with AVX-512 that
oneDNN picks AVX-512 convolution kernels that run 60-130x slower than its AVX2 ones (a 1024x1024
D-LinkNet forward: 271 s instead of 3.5 s). oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, when it loads,
so the choice must be made before the first ``import mindspore``.

The choice is measured, not guessed: each candidate setting runs a short convolution workload in a
fresh process (:mod:`roadseg.model.isa_probe`), and the fastest wins. The result is cached per CPU model,
CPU flags and MindSpore version, so the measurement (a few seconds) happens once per machine. A CPU
with one candidate (no AVX-512) is never measured. The user's own ``ONEDNN_MAX_CPU_ISA`` (or
``DNNL_MAX_CPU_ISA``) is never overridden.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
#: Set beside ``ONEDNN_MAX_CPU_ISA`` when roadseg chose it, so child processes (msrun workers, test
#: subprocesses) know the inherited value is roadseg's measured choice, not the user's.
CHOICE_MARKER = "ROADSEG_CPU_ISA_CHOICE"
#: oneDNN's own choice: the variable left unset.
DEFAULT = "DEFAULT"
#: Bump when the probe's workload changes, so cached decisions are measured again.
PROBE_VERSION = 1
#: Prefer oneDNN's own choice unless a cap is faster by more than this factor.
DEFAULT_PREFERENCE = 1.05
#: A later candidate is stopped once it runs this many times longer than the best so far.
STOP_FACTOR = 10.0
FIRST_PROBE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class CpuIdentity:
    """What the cached decision is keyed on: the CPU and the MindSpore build that runs on it."""

    model: str
    machine: str
    flags: tuple[str, ...]
    mindspore: str

    def key(self) -> str:
        text = json.dumps([self.model, self.machine, list(self.flags), self.mindspore, PROBE_VERSION])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class IsaChoice:
    """The setting in force and why: ``isa`` is a oneDNN ISA name or ``DEFAULT`` (variable unset)."""

    isa: str
    source: str  # "user", "measured", "cache", "inherited", "single candidate", "too late"
    reason: str
    cpu: str = ""
    timings: dict[str, float | None] = field(default_factory=dict)
    cache_file: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """The model name and the sorted ISA flags of the first processor in ``/proc/cpuinfo`` text."""
    model, flags = "", ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = tuple(sorted(value.split()))
        if model and flags:
            break
    return model, flags


def isa_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The flags that decide oneDNN's kernels (SIMD widths and their extensions), sorted."""
    return tuple(flag for flag in flags if flag.startswith(("avx", "amx", "sse", "fma", "f16c")))


def cpu_identity() -> CpuIdentity:
    """This CPU's model, architecture and ISA flags, and the installed MindSpore's version."""
    model, flags = "", ()
    with contextlib.suppress(OSError):
        model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    try:
        mindspore_version = metadata.version("mindspore")
    except metadata.PackageNotFoundError:
        mindspore_version = "not installed"
    return CpuIdentity(model=model or platform.processor() or "unknown", machine=platform.machine(),
                       flags=isa_flags(flags), mindspore=mindspore_version)


def isa_candidates(flags: tuple[str, ...]) -> list[str]:
    """Settings worth measuring, cheapest-to-run first: caps below the CPU's widest units, then oneDNN's own.

    Only AVX-512 CPUs have a choice: without AVX-512, oneDNN's default already is the AVX2 (or older)
    code path. ``AVX512_CORE`` is measured too, in case a plain AVX-512 cap avoids the slow kernels.
    """
    if "avx512f" not in flags or "avx2" not in flags:
        return [DEFAULT]
    return ["AVX2", "AVX512_CORE", DEFAULT]


def user_isa_setting(environ: dict[str, str]) -> str | None:
    """The ISA the user set (a variable that roadseg did not set itself), or None."""
    for name in ISA_VARIABLES:
        value = environ.get(name)
        if value is not None and environ.get(CHOICE_MARKER) != value:
            return f"{name}={value}"
    return None


def pick_fastest(timings: dict[str, float | None]) -> str:
    """The fastest measured candidate; oneDNN's default unless a cap beats it by ``DEFAULT_PREFERENCE``."""
    measured = {isa: seconds for isa, seconds in timings.items() if seconds is not None}
    if not measured:
        return DEFAULT
    best = min(measured, key=measured.get)
    default_seconds = measured.get(DEFAULT)
    if default_seconds is not None and default_seconds <= measured[best] * DEFAULT_PREFERENCE:
        return DEFAULT
    return best


def _probe_environment(isa: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in (*ISA_VARIABLES, CHOICE_MARKER)}
    if isa != DEFAULT:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    env.setdefault("GLOG_v", "3")
    return env


def run_probe(isa: str, timeout_s: float) -> tuple[float | None, float, str]:
    """Run the probe under ``isa`` in a fresh process: (workload seconds or None, wall seconds, note)."""
    started = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "roadseg.model.isa_probe"], env=_probe_environment(isa),
                                capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started, f"stopped after {timeout_s:.1f} s"
    wall = time.perf_counter() - started
    for line in reversed(result.stdout.splitlines()):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return float(json.loads(line)["seconds"]), wall, "ok"
    tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
    return None, wall, f"probe failed (exit {result.returncode}): {tail[:200]}"


def measure_candidates(candidates: list[str]) -> tuple[dict[str, float | None], dict[str, str]]:
    """Time each candidate; one that runs ``STOP_FACTOR`` times longer than the best so far is stopped."""
    timings: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    limit = FIRST_PROBE_TIMEOUT_S
    for isa in candidates:
        seconds, wall, note = run_probe(isa, limit)
        timings[isa], notes[isa] = seconds, note
        logger.info("oneDNN ISA probe %s: %s (%s, %.1f s in all)", isa, seconds, note, wall)
        if seconds is not None:
            start_up = max(wall - seconds, 0.0)
            best = min(value for value in timings.values() if value is not None)
            limit = min(limit, start_up * 1.5 + 3.0 + STOP_FACTOR * best)
    return timings, notes


def _read_cached(path: Path) -> IsaChoice | None:
    try:
        data = json.loads(path.read_text())
        return IsaChoice(**{**data, "source": "cache", "cache_file": str(path)})
    except (OSError, ValueError, TypeError):
        return None


def _write_cached(path: Path, choice: IsaChoice) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        json.dump(choice.as_dict(), handle, indent=2)
    os.replace(handle.name, path)


def _isa_cache_dir() -> Path:
    from roadseg.model.registry import cache_dir

    return cache_dir() / "cpu-isa"


def measured_choice(identity: CpuIdentity) -> IsaChoice:
    """The cached decision for this CPU and MindSpore, measuring it first (under a lock) when absent."""
    candidates = isa_candidates(identity.flags)
    cpu = f"{identity.model} ({identity.machine})"
    if len(candidates) == 1:
        return IsaChoice(isa=DEFAULT, source="single candidate", cpu=cpu,
                         reason="no AVX-512 on this CPU: oneDNN's own choice is its fast path")
    directory = _isa_cache_dir()
    path = directory / f"{identity.key()}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / ".lock", "w")  # noqa: SIM115 - held for the whole measurement
    except OSError as error:
        logger.warning("cannot use %s (%s); measuring oneDNN ISA without a cache", directory, error)
        return _measure(candidates, cpu, "")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent processes (msrun workers) wait for one measurement
        cached = _read_cached(path)
        if cached is not None:
            return cached
        logger.warning("roadseg: measuring which CPU instruction set is fastest for MindSpore here "
                       "(once per machine, a few seconds)")
        choice = _measure(candidates, cpu, str(path))
        with contextlib.suppress(OSError):
            _write_cached(path, choice)
        return choice


def _measure(candidates: list[str], cpu: str, cache_file: str) -> IsaChoice:
    timings, notes = measure_candidates(candidates)
    isa = pick_fastest(timings)
    shown = ", ".join(f"{name} {seconds * 1000:.0f} ms" if seconds is not None else f"{name} {notes[name]}"
                      for name, seconds in timings.items())
    return IsaChoice(isa=isa, source="measured", cpu=cpu, timings=timings, cache_file=cache_file,
                     reason=f"fastest of the probe's convolutions: {shown}")


_settled: IsaChoice | None = None


def settle_cpu_isa() -> IsaChoice:
    """Decide and apply oneDNN's ISA for this process (idempotent); must run before MindSpore loads."""
    global _settled
    if _settled is not None:
        return _settled
    user = user_isa_setting(dict(os.environ))
    inherited = os.environ.get(CHOICE_MARKER)
    if user is not None:
        _settled = IsaChoice(isa=user.partition("=")[2], source="user", reason=f"{user} set by the user")
    elif inherited:
        _settled = IsaChoice(isa=inherited, source="inherited", reason="chosen by the roadseg parent process")
    elif "mindspore" in sys.modules:
        _settled = IsaChoice(isa=DEFAULT, source="too late",
                             reason="MindSpore was imported before roadseg; oneDNN keeps its own choice")
        logger.warning("MindSpore was imported before roadseg could choose oneDNN's instruction set; on "
                       "AVX-512 CPUs set ONEDNN_MAX_CPU_ISA=AVX2 yourself if the network is slow")
    else:
        _settled = measured_choice(cpu_identity())
        if _settled.isa != DEFAULT:
            os.environ["ONEDNN_MAX_CPU_ISA"] = _settled.isa
        os.environ[CHOICE_MARKER] = _settled.isa
    return _settled
