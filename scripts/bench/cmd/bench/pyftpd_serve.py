"""pyftpdlib as the original system's server: the default asynchronous
FTPServer, one account with every permission on ROOT. The password comes
from FTP_PASSWORD, never from the command line. Logging is at WARNING so
that per-command log lines do not slow it down.

usage: pyftpd_serve.py PORT USER ROOT
"""
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    port, user, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    logging.basicConfig(level=logging.WARNING)
    auth = DummyAuthorizer()
    auth.add_user(user, os.environ["FTP_PASSWORD"], root, perm="elradfmwMT")
    handler = FTPHandler
    handler.authorizer = auth
    server = FTPServer(("127.0.0.1", port), handler)
    server.max_cons = 256
    server.serve_forever()


if __name__ == "__main__":
    main()
