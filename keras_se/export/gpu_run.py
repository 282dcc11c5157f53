"""Running a .tflite file on LiteRT's GPU accelerator, in a child process.

`check_gpu` applies the classic GPU delegate's rules to a flatbuffer; this
module runs the file on a real GPU runtime: LiteRT's GPU accelerator (ML
Drift over WebGPU, `libLiteRtWebGpuAccelerator.so` in ai-edge-litert), on
whatever adapter the machine has. Without a GPU that is Mesa's software
Vulkan driver (lavapipe, "llvmpipe"): the same compiler and kernels a phone's
GPU gets, so "fully accelerated" and the outputs are real, but times are
not phone times.

The accelerator runs in a child process that never imports TensorFlow
(TensorFlow and the accelerator in one process crash at model creation), so
a crash of the runtime is a reported result, never the caller's crash.
"""

import contextlib
import dataclasses
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras_se.export.tensors import dequantize_output, quantize_input

# The same file run on the GPU with float32 kernels (GpuOptions.enforce_f32)
# against LiteRT's CPU runtime: both compute the file in float32, so what is
# left is summation order (measured below 1e-5). A wrong kernel gives errors
# of order 1 (0.27 to 1.0 for the faults keras_se.export.forms avoids),
# whatever the model's float16 range.
GPU_KERNEL_RELATIVE_L2 = 1e-3

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gpu_child.py")
_LIBRARY = "libLiteRtWebGpuAccelerator.so"

NO_ADAPTER_FIX = (
    "install a Vulkan driver: Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1 "
    "(Mesa 22.3 is too old); Debian 13 / Ubuntu 24.04: apt-get install mesa-vulkan-drivers libvulkan1; "
    "or use a machine with a GPU"
)

# Seconds to compile a model on the GPU (lavapipe compiles every kernel on
# the CPU: SENet-154 takes the longest, about a minute on 2 cores).
DEFAULT_TIMEOUT = 600
PRECISIONS = ("float16", "float32")


class GpuAcceleratorError(RuntimeError):
    """The child process could not be driven (it died or stopped answering)."""


@dataclasses.dataclass
class GpuRun:
    """What LiteRT's GPU accelerator did with one file.

    status is one of:
      - "ran": the model was compiled for the GPU and ran;
      - "refused": LiteRT refused to compile it for the GPU (`reason` is
        LiteRT's message, e.g. "Some ops are not accelerated");
      - "crashed": the accelerator killed its process (`reason` names the
        signal or exit status);
      - "timeout": no answer within the time limit;
      - "not run": no GPU adapter or no accelerator library (`reason` says
        how to fix it), or `to_tflite(..., verify=False)`. Never counted as
        passed.
    """

    status: str
    reason: str = ""
    fully_accelerated: bool = None
    adapter: str = None
    software: bool = None
    outputs: np.ndarray = dataclasses.field(default=None, repr=False)
    latency_ms: float = None
    runs: int = 0
    # Set by `keras_se.export.verify.compare_on_gpu`: the same file with
    # float32 kernels on the GPU against LiteRT's CPU runtime, or (None)
    # why that run gave nothing to compare.
    kernel_relative_l2: float = None
    kernel_reason: str = ""

    @property
    def passed(self):
        """True only when the file ran with every op on the GPU."""
        return self.status == "ran" and bool(self.fully_accelerated)

    def verdict(self):
        """One short phrase for tables: "fully accelerated", "refused: ...", "not run: ..."."""
        if self.status == "ran":
            return "fully accelerated" if self.fully_accelerated else "partly accelerated"
        return f"{self.status}: {self.reason}"

    def kernel_verdict(self):
        """The float32 kernel check in a few words: "within bound", "wrong: ...", "not run: ...".

        "not run" is never a pass: without the float32 run a wrong kernel
        cannot be told from float16 rounding.
        """
        if self.kernel_relative_l2 is None:
            return f"not run: {self.kernel_reason or 'the file did not run on the GPU'}"
        if self.kernel_relative_l2 <= GPU_KERNEL_RELATIVE_L2:
            return "within bound"
        return f"wrong: relative L2 {self.kernel_relative_l2:.3g} (bound {GPU_KERNEL_RELATIVE_L2})"

    def to_dict(self, parity=None):
        """A JSON-ready record (without the outputs), with `parity` (a `Parity`) when given."""
        record = dataclasses.asdict(self)
        record.pop("outputs")
        record.update(passed=self.passed, kernel_check=self.kernel_verdict(), parity=dataclasses.asdict(parity) if parity else None)
        return record


def adapter_of(stderr):
    """(adapter description, software) from the accelerator's log, or (None, None)."""
    match = re.search(r"Selected adapter: ([^\n]*)", stderr)
    if not match:
        return None, None
    text = match.group(1).strip()
    return text, "software" in text.lower()


def _not_run_reason(text):
    if "No adapters found" in text or "Found no drivers" in text:
        if "ArrayDynamicIndexing" in text:
            return "no GPU adapter (the Vulkan driver is too old for WebGPU); " + NO_ADAPTER_FIX
        return "no GPU adapter; " + NO_ADAPTER_FIX
    return None


def _signal_name(returncode):
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"{signal.Signals(-returncode).name} (signal {-returncode})"
        return f"signal {-returncode}"
    return f"exit status {returncode}"


class GpuAccelerator:
    """One `.tflite` file compiled on LiteRT's GPU accelerator in a child process.

    A context manager; the child lives until `close()`, so that runs can be
    interleaved with other work (`keras_se.export.bench`).

    Args:
        path: a `.tflite` file.
        timeout: float, seconds to wait for the model to compile and for
            each later command.
        precision: "float16" (defaults; LiteRT's default, what phones run)
            or "float32" (`GpuOptions.enforce_f32`: the same kernels in full
            precision).

    After construction, `status` is "ready" or one of `GpuRun`'s statuses
    other than "ran", with `reason`.
    """

    def __init__(self, path, timeout=DEFAULT_TIMEOUT, precision="float16"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")
        self.path = os.fspath(path)
        self.timeout = timeout
        self.status, self.reason = "ready", ""
        self.fully_accelerated = self.adapter = self.software = None
        self._process = self._stderr = None
        self._log = ""
        self._workdir = tempfile.mkdtemp(prefix="keras_se_gpu_")
        import ai_edge_litert

        library = os.path.join(os.path.dirname(ai_edge_litert.__file__), _LIBRARY)
        if not os.path.isfile(library):
            self.status, self.reason = "not run", f"this ai-edge-litert has no GPU accelerator ({_LIBRARY})"
            return
        self._stderr = open(os.path.join(self._workdir, "stderr.log"), "w+")
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        # The WebGPU runtime needs a runtime directory (Dawn's Vulkan backend).
        env.setdefault("XDG_RUNTIME_DIR", self._workdir)
        try:
            self._process = subprocess.Popen(
                [sys.executable, _CHILD, self.path, "--reply-fd", str(write_fd), "--precision", precision],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(write_fd,),
                env=env,
                text=True,
            )
        finally:
            os.close(write_fd)
        self._replies = os.fdopen(read_fd, "r")
        message = self._reply()
        self.adapter, self.software = adapter_of(self.stderr())
        if message is None:
            return
        if message["event"] == "error":
            text = message["message"] + "\n" + self.stderr()
            reason = _not_run_reason(text)
            self.status, self.reason = ("not run", reason) if reason else ("refused", _refusal(message["message"], self.stderr()))
            self.close()
            return
        self.fully_accelerated = message["fully_accelerated"]
        self.input = message["input"]
        # A model with several outputs: in the converted model's order
        # (output_0, output_1, ...), as keras_se.export.verify.output_details.
        self._outputs = sorted(message["outputs"], key=lambda o: (len(o["name"] or ""), o["name"] or ""))
        self._order = [message["outputs"].index(o) for o in self._outputs]

    def stderr(self):
        """What the accelerator logged so far."""
        if self._stderr is None or self._stderr.closed:
            return self._log
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.seek(0, os.SEEK_END)
        return text

    def _reply(self):
        """The next message, or None after setting status to "crashed" / "timeout"."""
        deadline = time.monotonic() + self.timeout
        while True:
            ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.status, self.reason = "timeout", f"no answer from the GPU accelerator within {self.timeout:g} s"
                self._process.kill()
                self.close()
                return None
            line = self._replies.readline()
            if line:
                return json.loads(line)
            returncode = self._process.wait()
            self.status = "crashed"
            self.reason = f"the accelerator's process died ({_signal_name(returncode)})"
            last = _last_error(self.stderr())
            if last:
                self.reason += f"; last error: {last[:200]}"
            self.close()
            return None

    def _command(self, expected, **command):
        if self.status != "ready":
            raise GpuAcceleratorError(f"the GPU accelerator is not ready ({self.status}: {self.reason})")
        try:
            self._process.stdin.write(json.dumps(command) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the child died: _reply reports how
        message = self._reply()
        if message is None:
            raise GpuAcceleratorError(f"{self.status}: {self.reason}")
        if message["event"] != expected:
            raise GpuAcceleratorError(f"unexpected answer from the GPU accelerator: {message}")
        return message

    def run(self, samples):
        """Outputs (float32, one row per sample) for float `samples` of shape (N, H, W, C).

        Quantised files are fed and read through their own scale and zero
        point, as `keras_se.export.verify.run_tflite` does on the CPU.
        """
        samples = np.asarray(samples, "float32")
        expected = tuple(self.input["shape"][1:])
        if samples.ndim != len(expected) + 1 or tuple(samples.shape[1:]) != expected:
            raise ValueError(
                f"samples must be (N, {', '.join(map(str, expected))}), the file's input for batch N. "
                f"Received: samples.shape={tuple(samples.shape)}"
            )
        x_path, y_path = os.path.join(self._workdir, "x.npy"), os.path.join(self._workdir, "y.npz")
        np.save(x_path, quantize_input(samples, self.input["dtype"], self.input["quantization"]))
        self._command("ran", cmd="run", inputs=x_path, outputs=y_path)
        with np.load(y_path) as arrays:
            results = [arrays[f"arr_{i}"] for i in self._order]
        outputs = [dequantize_output(y, o["dtype"], o["quantization"]) for y, o in zip(results, self._outputs)]
        return outputs[0] if len(outputs) == 1 else outputs

    def time(self, runs):
        """Milliseconds of each of `runs` invocations (run and read the output)."""
        return self._command("timed", cmd="time", runs=int(runs))["ms"]

    def close(self):
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._log = self.stderr()
            self._stderr.close()
            self._replies.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _last_error(stderr):
    """The last error line the accelerator logged, or None."""
    return next((x for x in reversed(stderr.splitlines()) if x.startswith(("E0", "ERROR", "F0"))), None)


def _refusal(message, stderr):
    if "not accelerated" in message or "not accelerated" in stderr:
        return "some ops are not accelerated (LiteRT: the GPU accelerator cannot run every op)"
    return (_last_error(stderr) or message)[:300]


def run_on_gpu_accelerator(tflite, samples=None, runs=0, warmup=2, timeout=DEFAULT_TIMEOUT, precision="float16"):
    """Runs a `.tflite` file on LiteRT's GPU accelerator in a child process.

    Args:
        tflite: path to a `.tflite` file, or its bytes.
        samples: optional float array (N, H, W, C) of inputs; the result's
            `outputs` are the model's outputs for them (int8 files are fed
            and read through their own quantisation parameters).
        runs: int, defaults to 0. Timed invocations (`latency_ms` is their
            median), after `warmup` untimed ones.
        warmup: int, defaults to 2.
        timeout: float, seconds allowed for compilation and each step.
        precision: "float16" (default, what phones run) or "float32".

    Returns:
        `GpuRun`. Where the machine has no GPU adapter, its status is
        "not run" with the fix in `reason`; check `passed`, never the
        absence of an error.

    Example:

    >>> result = run_on_gpu_accelerator("se_mobilenet_float16_gpu.tflite", runs=20)
    >>> result.passed, result.adapter, result.latency_ms
    (True, 'llvmpipe (LLVM 15.0.6, 256 bits), arch=software, ...', 2.7)
    """
    with _as_path(tflite) as path, GpuAccelerator(path, timeout=timeout, precision=precision) as accelerator:
        outputs, times = None, []
        if accelerator.status == "ready":
            # A crash or timeout mid-run sets the accelerator's status and reason.
            with contextlib.suppress(GpuAcceleratorError):
                outputs = accelerator.run(samples) if samples is not None else None
                if runs:
                    accelerator.time(warmup)
                    times = accelerator.time(runs)
        return GpuRun(
            status="ran" if accelerator.status == "ready" else accelerator.status,
            reason=accelerator.reason,
            fully_accelerated=accelerator.fully_accelerated,
            adapter=accelerator.adapter,
            software=accelerator.software,
            outputs=outputs,
            latency_ms=statistics.median(times) if times else None,
            runs=len(times),
        )


@contextlib.contextmanager
def _as_path(tflite):
    if not isinstance(tflite, (bytes, bytearray)):
        path = os.fspath(tflite)
        if not os.path.isfile(path):
            raise ValueError(f"TFLite file not found. Received: {path!r}")
        yield path
        return
    fd, path = tempfile.mkstemp(suffix=".tflite")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(tflite)
        yield path
    finally:
        os.unlink(path)
