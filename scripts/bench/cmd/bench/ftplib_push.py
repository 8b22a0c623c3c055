"""Stand-in for the original Python agent (ftplib): one connection, whole
files with STOR, no resume. It uploads every file whose size or mtime
differs from what it recorded after its last run, as the original agent
did. The password comes from FTP_PASSWORD, never from the command line.

usage: ftplib_push.py HOST PORT USER SRC_DIR REMOTE_DIR STATE_FILE
prints {"files": N, "bytes_sent": N} on success.
"""
import ftplib
import json
import os
import sys


def ensure_dir(ftp, path, made):
    cur = ""
    for part in path.strip("/").split("/"):
        cur += "/" + part
        if cur in made:
            continue
        try:
            ftp.mkd(cur)
        except ftplib.error_perm:
            pass  # exists; a real refusal shows up at STOR
        made.add(cur)


def main():
    host, port, user, src, base, state_path = sys.argv[1:7]
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {}
    ftp = ftplib.FTP()
    ftp.connect(host, int(port), timeout=120)
    ftp.login(user, os.environ["FTP_PASSWORD"])
    made, files, sent = set(), 0, 0
    for root, dirs, names in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(root, src)
        rdir = base if rel == "." else base + "/" + rel.replace(os.sep, "/")
        for name in sorted(names):
            p = os.path.join(root, name)
            st = os.stat(p)
            key = name if rel == "." else rel + "/" + name
            sig = [st.st_size, st.st_mtime_ns]
            if state.get(key) == sig:
                continue
            ensure_dir(ftp, rdir, made)
            with open(p, "rb") as f:
                ftp.storbinary("STOR " + rdir + "/" + name, f, blocksize=256 * 1024)
            state[key] = sig
            files += 1
            sent += st.st_size
    ftp.quit()
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)
    print(json.dumps({"files": files, "bytes_sent": sent}))


if __name__ == "__main__":
    main()
