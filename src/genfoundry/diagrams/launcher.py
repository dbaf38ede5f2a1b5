"""A small Java class that starts PlantUML's HTTP server on the loopback address only, and ends the JVM when the
process that started it is gone.

PlantUML's own `--http-server:PORT:ADDRESS` drops the address (its option parser splits the value on ':' and
keeps the first part), so the server would listen on every interface. This class binds a `ServerSocket` to
`InetAddress.getLoopbackAddress()` on a free port, prints `webPort=<port>` on stderr, and hands the socket to
`net.sourceforge.plantuml.picoweb.PicoWebServer.serverLoop`.

A JVM whose parent is SIGKILLed is re-parented and would serve on for ever (a second one starts with the next
server). So a daemon thread reads standard input, a pipe whose only writer is the parent, until end of file, which
the kernel delivers when the parent dies however it dies, and then halts the JVM. Unlike `PR_SET_PDEATHSIG` this
does not fire when the thread that started the JVM ends (the server starts it from a short-lived worker thread).

It is written here as class-file bytes so no Java compiler is needed (the bundled runtime has none); every method
is straight-line code, so the class needs no stack map frames. The equivalent source is:

    public final class GenfoundryPicoWeb implements Runnable {
        public static void main(String[] args) throws Exception {
            Thread parentWatch = new Thread(new GenfoundryPicoWeb());
            parentWatch.setDaemon(true);
            parentWatch.start();
            ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            System.err.print("webPort=");
            System.err.println(socket.getLocalPort());
            PicoWebServer.serverLoop(socket);
        }

        public void run() {  // the parent is gone when its end of our standard input closes
            System.in.transferTo(OutputStream.nullOutputStream());
            Runtime.getRuntime().halt(0);
        }
    }
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

LAUNCHER_CLASS = "GenfoundryPicoWeb"
_CLASS_FILE_VERSION = 52  # Java 8: runs on any newer JVM; straight-line code needs no stack map frames.
_BACKLOG = 50

# Constant-pool tags (JVM specification, section 4.4).
_UTF8, _CLASS, _STRING, _FIELDREF, _METHODREF, _NAME_AND_TYPE = 1, 7, 8, 9, 10, 12


class _ConstantPool:
    def __init__(self) -> None:
        self._entries: list[bytes] = []
        self._index: dict[bytes, int] = {}

    def _add(self, entry: bytes) -> int:
        if entry not in self._index:
            self._entries.append(entry)
            self._index[entry] = len(self._entries)  # indices start at 1
        return self._index[entry]

    def utf8(self, text: str) -> int:
        data = text.encode("ascii")
        return self._add(struct.pack(">BH", _UTF8, len(data)) + data)

    def class_(self, name: str) -> int:
        return self._add(struct.pack(">BH", _CLASS, self.utf8(name)))

    def string(self, text: str) -> int:
        return self._add(struct.pack(">BH", _STRING, self.utf8(text)))

    def _member(self, tag: int, owner: str, name: str, descriptor: str) -> int:
        name_and_type = self._add(struct.pack(">BHH", _NAME_AND_TYPE, self.utf8(name), self.utf8(descriptor)))
        return self._add(struct.pack(">BHH", tag, self.class_(owner), name_and_type))

    def field(self, owner: str, name: str, descriptor: str) -> int:
        return self._member(_FIELDREF, owner, name, descriptor)

    def method(self, owner: str, name: str, descriptor: str) -> int:
        return self._member(_METHODREF, owner, name, descriptor)

    def encode(self) -> bytes:
        return struct.pack(">H", len(self._entries) + 1) + b"".join(self._entries)


def _method(
    access: int, name: int, descriptor: int, code_name: int, max_stack: int, max_locals: int, code: bytes
) -> bytes:
    """A method_info with only a Code attribute (no exception table, no attributes of its own)."""
    body = struct.pack(">HHI", max_stack, max_locals, len(code)) + code + struct.pack(">HH", 0, 0)
    return struct.pack(">HHHH", access, name, descriptor, 1) + struct.pack(">HI", code_name, len(body)) + body


def launcher_class_bytes() -> bytes:
    """The class file of `GenfoundryPicoWeb` (see the module docstring for its source)."""
    pool = _ConstantPool()
    this_class = pool.class_(LAUNCHER_CLASS)
    super_class = pool.class_("java/lang/Object")
    runnable = pool.class_("java/lang/Runnable")
    object_init = pool.method("java/lang/Object", "<init>", "()V")
    this_init = pool.method(LAUNCHER_CLASS, "<init>", "()V")
    thread = pool.class_("java/lang/Thread")
    thread_init = pool.method("java/lang/Thread", "<init>", "(Ljava/lang/Runnable;)V")
    set_daemon = pool.method("java/lang/Thread", "setDaemon", "(Z)V")
    start = pool.method("java/lang/Thread", "start", "()V")
    stdin = pool.field("java/lang/System", "in", "Ljava/io/InputStream;")
    null_output = pool.method("java/io/OutputStream", "nullOutputStream", "()Ljava/io/OutputStream;")
    transfer_to = pool.method("java/io/InputStream", "transferTo", "(Ljava/io/OutputStream;)J")
    runtime = pool.method("java/lang/Runtime", "getRuntime", "()Ljava/lang/Runtime;")
    halt = pool.method("java/lang/Runtime", "halt", "(I)V")
    server_socket = pool.class_("java/net/ServerSocket")
    loopback = pool.method("java/net/InetAddress", "getLoopbackAddress", "()Ljava/net/InetAddress;")
    socket_init = pool.method("java/net/ServerSocket", "<init>", "(IILjava/net/InetAddress;)V")
    stderr = pool.field("java/lang/System", "err", "Ljava/io/PrintStream;")
    prefix = pool.string("webPort=")
    print_text = pool.method("java/io/PrintStream", "print", "(Ljava/lang/String;)V")
    local_port = pool.method("java/net/ServerSocket", "getLocalPort", "()I")
    print_int = pool.method("java/io/PrintStream", "println", "(I)V")
    serve = pool.method("net/sourceforge/plantuml/picoweb/PicoWebServer", "serverLoop", "(Ljava/net/ServerSocket;)V")
    code_name = pool.utf8("Code")
    init_name, void_descriptor = pool.utf8("<init>"), pool.utf8("()V")
    main_name, main_descriptor, run_name = pool.utf8("main"), pool.utf8("([Ljava/lang/String;)V"), pool.utf8("run")

    init_code = b"".join(
        [
            b"\x2a",  # aload_0
            struct.pack(">BH", 0xB7, object_init),  # invokespecial Object.<init>
            b"\xb1",  # return
        ]
    )
    main_code = b"".join(
        [
            struct.pack(">BH", 0xBB, thread),  # new Thread
            b"\x59",  # dup
            struct.pack(">BH", 0xBB, this_class),  # new GenfoundryPicoWeb
            b"\x59",  # dup
            struct.pack(">BH", 0xB7, this_init),  # invokespecial GenfoundryPicoWeb.<init>
            struct.pack(">BH", 0xB7, thread_init),  # invokespecial Thread.<init>(Runnable)
            b"\x4d",  # astore_2
            b"\x2c",  # aload_2
            b"\x04",  # iconst_1
            struct.pack(">BH", 0xB6, set_daemon),  # invokevirtual Thread.setDaemon(true)
            b"\x2c",  # aload_2
            struct.pack(">BH", 0xB6, start),  # invokevirtual Thread.start
            struct.pack(">BH", 0xBB, server_socket),  # new ServerSocket
            b"\x59",  # dup
            b"\x03",  # iconst_0: port 0, any free port
            struct.pack(">BB", 0x10, _BACKLOG),  # bipush backlog
            struct.pack(">BH", 0xB8, loopback),  # invokestatic InetAddress.getLoopbackAddress
            struct.pack(">BH", 0xB7, socket_init),  # invokespecial ServerSocket.<init>
            b"\x4c",  # astore_1
            struct.pack(">BH", 0xB2, stderr),  # getstatic System.err
            struct.pack(">BH", 0x13, prefix),  # ldc_w "webPort="
            struct.pack(">BH", 0xB6, print_text),  # invokevirtual PrintStream.print
            struct.pack(">BH", 0xB2, stderr),  # getstatic System.err
            b"\x2b",  # aload_1
            struct.pack(">BH", 0xB6, local_port),  # invokevirtual ServerSocket.getLocalPort
            struct.pack(">BH", 0xB6, print_int),  # invokevirtual PrintStream.println(int)
            b"\x2b",  # aload_1
            struct.pack(">BH", 0xB8, serve),  # invokestatic PicoWebServer.serverLoop
            b"\xb1",  # return
        ]
    )
    run_code = b"".join(
        [
            struct.pack(">BH", 0xB2, stdin),  # getstatic System.in
            struct.pack(">BH", 0xB8, null_output),  # invokestatic OutputStream.nullOutputStream
            struct.pack(">BH", 0xB6, transfer_to),  # invokevirtual InputStream.transferTo: until end of file
            b"\x58",  # pop2: the byte count (a long)
            struct.pack(">BH", 0xB8, runtime),  # invokestatic Runtime.getRuntime
            b"\x03",  # iconst_0
            struct.pack(">BH", 0xB6, halt),  # invokevirtual Runtime.halt(0)
            b"\xb1",  # return
        ]
    )
    public, public_static = 0x0001, 0x0009
    methods = [
        _method(public, init_name, void_descriptor, code_name, 1, 1, init_code),
        _method(public_static, main_name, main_descriptor, code_name, 5, 3, main_code),
        _method(public, run_name, void_descriptor, code_name, 2, 1, run_code),
    ]
    public_final_super = 0x0031
    return b"".join(
        [
            struct.pack(">IHH", 0xCAFEBABE, 0, _CLASS_FILE_VERSION),
            pool.encode(),
            struct.pack(">HHH", public_final_super, this_class, super_class),
            struct.pack(">HH", 1, runnable),  # implements Runnable
            struct.pack(">H", 0),  # no fields
            struct.pack(">H", len(methods)) + b"".join(methods),
            struct.pack(">H", 0),  # no class attributes
        ]
    )


def write_launcher(directory: Path) -> Path:
    """Write the class file under `directory` (once per content) and return the folder to put on the classpath."""
    data = launcher_class_bytes()
    folder = directory / f"launcher-{hashlib.sha256(data).hexdigest()[:12]}"
    target = folder / f"{LAUNCHER_CLASS}.class"
    if not target.exists() or target.read_bytes() != data:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{LAUNCHER_CLASS}.class"
        tmp.write_bytes(data)
        tmp.replace(target)
    return folder
