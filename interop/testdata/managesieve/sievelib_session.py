#!/usr/bin/python3
"""One ManageSieve session through python3-sievelib (sievelib.managesieve).

Run by interop/managesieve_test.go: argv[1] is a JSON file with host, port,
user, password, wrong_password, good, broken and uni_name. Every step's
result goes to stdout as one JSON object; the Go test asserts on it, this
script asserts nothing itself.
"""
import json
import ssl
import sys

from sievelib.managesieve import Client

cfg = json.load(open(sys.argv[1], encoding="utf-8"))
out = {}


def err(c):
    """The server's error text of the last failed command."""
    msg = c.errmsg
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return msg


def listing(c):
    res = c.listscripts()
    if res is None:
        return None
    active, others = res
    return {"active": active, "scripts": sorted(others + ([active] if active else []))}


c = Client(cfg["host"], cfg["port"])
# starttls=True: sievelib sends STARTTLS and reads the capability block the
# server sends after the handshake. authmech None: it picks PLAIN.
out["login"] = bool(c.connect(cfg["user"], cfg["password"], starttls=True))
out["tls"] = c.sock.version() if isinstance(c.sock, ssl.SSLSocket) else ""
if out["login"]:
    out["list0"] = listing(c)
    out["put_main"] = c.putscript("main", cfg["good"])
    out["put_uni"] = c.putscript(cfg["uni_name"], cfg["good"])
    ok = c.checkscript(cfg["broken"])
    out["check_broken"] = {"ok": ok, "error": "" if ok else err(c)}
    ok = c.putscript("broken", cfg["broken"])
    out["put_broken"] = {"ok": ok, "error": "" if ok else err(c)}
    out["activate"] = c.setactive("main")
    out["list1"] = listing(c)
    # getscript re-joins the lines of the literal with "\n".
    out["get_main"] = c.getscript("main")
    out["havespace"] = c.havespace("next", 1000)
    # The server advertises VERSION, so this is a real RENAMESCRIPT.
    out["rename"] = c.renamescript("main", "renamed")
    out["list2"] = listing(c)
    ok = c.deletescript("renamed")
    out["delete_active"] = {"ok": ok, "error": "" if ok else err(c)}
    out["deactivate"] = c.setactive("")
    out["delete"] = c.deletescript("renamed")
    out["delete_uni"] = c.deletescript(cfg["uni_name"])
    out["list3"] = listing(c)
    if cfg.get("quote_name"):
        # sievelib puts a name in quotes without escaping, so the server
        # sees a broken command line followed by the script literal. The
        # literal must not run as commands: the session has to go on.
        ok = c.putscript('say "hi"', "keep;\r\n")
        out["put_quote_name"] = {"ok": ok, "error": "" if ok else err(c)}
        out["list_after_quote_name"] = listing(c)
    c.logout()

# A wrong password, through SASL LOGIN this time.
c = Client(cfg["host"], cfg["port"])
ok = bool(c.connect(cfg["user"], cfg["wrong_password"], starttls=True, authmech="LOGIN"))
out["bad_login"] = {"ok": ok, "error": "" if ok else err(c)}

json.dump(out, sys.stdout)
