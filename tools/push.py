"""pedal-push: copy models, cabinet IRs and presets to the pedal over SSH and make the
running pedal pick them up.

    pedal-push HOST [FILES...] [--user pi] [--dest /var/lib/pedal] [--port 22]
               [--presets] [--play] [--dry-run] [--json]

    models   .pedal .nam .json (RTNeural / AIDA-X / GuitarML)  -> DEST/models/
    IRs      .wav .flac                                         -> DEST/irs/
    presets  .json in a folder named `presets`, or any .json with --presets -> DEST/presets/

Each file is copied with `scp` to a temporary name in its destination folder and renamed
there with `mv` (atomic: the pedal never sees half a file). Then the pedal is told over
`ssh HOST pedal ctl ...` (see `reload_commands`): `load-model` for the pushed model with
--play, else `rescan`. Only `ssh` and `scp` (OpenSSH) are used, with BatchMode (keys, never a
password prompt) and a connect timeout. The SSH user must be in group `pedal` on the pedal
(deploy/install-pi.sh --push-user does it).

Exit status: 0 done; 2 a missing file, an unknown file type or an unreachable host (nothing
or not everything copied); 1 a remote command failed (the message says what is in place).
"""
import json
import os
import shlex
import subprocess
import sys

from pedal.cli.common import Parser, json_option, run_command
from pedal.errors import EXIT_USAGE, PedalError

EXIT_FAIL = 1
MODEL_EXT = (".pedal", ".nam", ".json")
IR_EXT = (".wav", ".flac")
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
CONTROL_SOCKET = "/run/pedal/control.sock"
REMOTE_PEDAL = "pedal"          # /usr/local/bin/pedal -> /opt/pedal/venv/bin/pedal


class PushError(PedalError):
    """EXIT_USAGE: nothing or not everything copied; EXIT_FAIL: a remote command failed."""

    def __init__(self, where, problem, exit_status=EXIT_USAGE):
        super().__init__(where, problem)
        self.exit_status = exit_status


def classify(path, presets=False):
    """The destination subfolder of a local file: models, irs or presets."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json" and (presets or
                           os.path.basename(os.path.dirname(os.path.abspath(path))) == "presets"):
        return "presets"
    if ext in MODEL_EXT:
        return "models"
    if ext in IR_EXT:
        return "irs"
    raise PushError(path, f"unknown file type {ext or '(no extension)'} (models: "
                    f"{' '.join(MODEL_EXT)}; IRs: {' '.join(IR_EXT)}; presets: .json with "
                    f"--presets or in a presets/ folder)")


def plan(files, dest, presets=False):
    """[(local path, subfolder, remote final path)], checked before any network."""
    out = []
    for path in files:
        if not os.path.isfile(path):
            raise PushError(path, "no such file")
        kind = classify(path, presets)
        name = os.path.basename(path)
        if name.startswith(".") or "/" in name or "\n" in name:
            raise PushError(path, "unsuitable file name")
        # absolute: scp would take a relative `a:b.wav` for a remote path
        out.append((os.path.abspath(path), kind, f"{dest.rstrip('/')}/{kind}/{name}"))
    return out


def reload_commands(pushed, play=False, socket=CONTROL_SOCKET):
    """The `pedal ctl` command lines (argv lists) run on the pedal after the copy. Adjust
    here when the control CLI changes. `pushed` is plan()'s list."""
    ctl = [REMOTE_PEDAL, "ctl", "--socket", socket]
    if play:
        models = [remote for _, kind, remote in pushed if kind == "models"]
        irs = [remote for _, kind, remote in pushed if kind == "irs"]
        cmds = []
        if models:
            cmds.append(ctl + ["load-model", models[-1]])
        if irs:
            cmds.append(ctl + ["load-ir", irs[-1]])
        if cmds:
            return cmds
    return [ctl + ["rescan"]]


class Remote:
    """ssh/scp to one host; with dry_run the command lines are printed, not run."""

    def __init__(self, host, user=None, port=22, dry_run=False, out=sys.stdout):
        self.host, self.port, self.dry_run, self.out = host, port, dry_run, out
        self.target = f"{user}@{host}" if user and "@" not in host else host

    def ssh(self, remote_argv):
        """Run one command on the pedal; the remote shell sees it quoted word by word."""
        return self._run(["ssh", *SSH_OPTIONS, "-p", str(self.port), self.target, "--",
                          shlex.join(remote_argv)])

    def ssh_script(self, script):
        return self._run(["ssh", *SSH_OPTIONS, "-p", str(self.port), self.target, "--", script])

    def scp(self, local, remote_path):
        return self._run(["scp", "-q", *SSH_OPTIONS, "-P", str(self.port), "--", local,
                          f"{self.target}:{remote_path}"])

    def _run(self, argv):
        if self.dry_run:
            print("+ " + shlex.join(argv), file=self.out)
            return ""
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except FileNotFoundError:
            raise PushError(argv[0], "not found (install the OpenSSH client)") from None
        if r.returncode == 255:
            last = (r.stderr.strip().splitlines() or ["ssh exited 255"])[-1]
            raise PushError(self.host, f"cannot reach the pedal over SSH ({last})")
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            raise PushError(self.host, f"`{argv[0]}` failed: {last}", EXIT_FAIL)
        return r.stdout


def push(remote, pushed, dest, play=False, socket=CONTROL_SOCKET, log=print):
    """Copy every file atomically, then run the reload commands; returns what was done."""
    tag = f".pedal-push-{os.getpid()}"
    if pushed:
        folders = sorted({f"{dest.rstrip('/')}/{kind}" for _, kind, _ in pushed})
        remote.ssh(["mkdir", "-p", *folders])       # the first contact: 255 = unreachable
        renames = []
        for i, (local, kind, final) in enumerate(pushed):
            tmp = f"{dest.rstrip('/')}/{kind}/{tag}-{i}.tmp"
            try:
                remote.scp(local, tmp)
            except PushError as e:
                if e.exit_status != EXIT_USAGE:          # reachable: leave no temp file behind
                    try:
                        remote.ssh(["rm", "-f", tmp])
                    except PushError:
                        pass
                raise
            renames.append(f"mv -f {shlex.quote(tmp)} {shlex.quote(final)}")
        remote.ssh_script(" && ".join(renames))
        for local, _, final in pushed:
            log(f"pedal-push: {local} -> {remote.host}:{final}")
    told = []
    for argv in reload_commands(pushed, play, socket):
        try:
            remote.ssh(argv)
        except PushError as e:
            if e.exit_status == EXIT_USAGE:
                raise
            raise PushError(e.where, f"{e.problem} (the files are in place; the pedal did not "
                                     f"reload: is pedal.service running?)", EXIT_FAIL) from None
        log(f"pedal-push: {remote.host}: {shlex.join(argv[:2] + argv[4:])}")
        told.append(shlex.join(argv))
    return {"host": remote.host, "copied": [{"local": local, "remote": final}
                                            for local, _, final in pushed], "commands": told}


def parser():
    p = Parser(prog="pedal-push", description=__doc__.split("\n\n")[0])
    p.add_argument("host", help="the pedal's host name or address (user@host works too)")
    p.add_argument("files", nargs="*", help="models, IRs, presets (none: just rescan)")
    p.add_argument("--user", default="pi", help="SSH user on the pedal (default pi)")
    p.add_argument("--dest", default="/var/lib/pedal",
                   help="the pedal's state folder (default /var/lib/pedal)")
    p.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    p.add_argument("--presets", action="store_true", help=".json files are presets")
    p.add_argument("--play", action="store_true",
                   help="load the pushed model (and IR) now instead of just rescanning")
    p.add_argument("--socket", default=CONTROL_SOCKET,
                   help=f"the pedal's control socket (default {CONTROL_SOCKET})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the ssh/scp commands instead of running them")
    json_option(p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)

    def work():
        pushed = plan(args.files, args.dest, args.presets)
        remote = Remote(args.host, args.user, args.port, args.dry_run,
                        out=sys.stderr if args.json else sys.stdout)
        quiet = args.dry_run or args.json or args.quiet
        result = push(remote, pushed, args.dest, args.play, args.socket,
                      log=(lambda m: None) if quiet else print)
        if args.json:
            print(json.dumps(result))

    return run_command("pedal-push", work)


if __name__ == "__main__":
    raise SystemExit(main())
