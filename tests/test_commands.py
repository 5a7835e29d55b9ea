"""Commands that cannot miss: the account and audit commands find the server's database (STATUSTHING_DB, --db), never
create one, say which one they changed, and fail in one line; the server's own flags come from the environment too."""
import os
import pty
import shlex
import subprocess
import sys
import time

import pytest

from conftest import ADMIN, ROOT, assert_one_line_failure, basic, child_env, cli, run_statusthing

ADD = "/statusthing.v1.ItemsService/AddItem"
EVERY_COMMAND = [("user", "add", "x", "--stdin"), ("user", "passwd", "admin", "--stdin"), ("user", "del", "x"),
                 ("user", "list"), ("token", "add", "t"), ("token", "list"), ("token", "revoke", "t"), ("audit",)]


def can_write(server, auth):
    return server.post(ADD, f'{{"name": "w-{time.monotonic_ns()}"}}', auth=auth)[0] == 200


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c[:2]))
def test_commands_never_create_a_database(tmp_path, command):
    typo = tmp_path / "statusthnig.db"
    by_flag = cli(typo, *command, stdin="a good password\n")
    by_env = run_statusthing(*command, stdin="a good password\n", env={"STATUSTHING_DB": str(typo)}, cwd=tmp_path)
    for result in (by_flag, by_env):
        assert_one_line_failure(result, f"no database at {typo}", "STATUSTHING_DB")
    assert os.listdir(tmp_path) == []


def test_statusthing_db_is_read_by_the_server_and_every_command(start_server, tmp_path):
    server = start_server(db_from_env=True)
    assert server.start_line["db"] == server.db_path
    elsewhere = tmp_path / "some other folder"
    elsewhere.mkdir()
    result = run_statusthing("user", "passwd", "admin", "--stdin", stdin="a much better password\n",
                             env={"STATUSTHING_DB": server.db_path}, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"changed the password of admin in {server.db_path}"
    assert not can_write(server, basic(*ADMIN))
    assert can_write(server, basic("admin", "a much better password"))
    assert os.listdir(elsewhere) == []
    listed = run_statusthing("user", "list", env={"STATUSTHING_DB": server.db_path}, cwd=elsewhere)
    assert listed.stdout.startswith("admin ") and listed.stderr.strip() == f"users in {server.db_path}:"


def test_the_startup_warning_gives_the_exact_command_for_this_server(start_server, tmp_path):
    server = start_server()
    warning = server.wait_log(lambda line: line.get("event") == "default_password")[0]["message"]
    command = shlex.split(warning.split("with: ", 1)[1].split("  (or", 1)[0])
    assert command[-2:] == ["--db", server.db_path] and "passwd" in command
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([*command, "--stdin"], input="the new password\n", capture_output=True, text=True,
                            cwd=elsewhere, env=child_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert not can_write(server, basic(*ADMIN)) and can_write(server, basic("admin", "the new password"))


@pytest.mark.sqlite_only
def test_a_missing_folder_is_named(tmp_path):
    folder = tmp_path / "var" / "lib" / "statusthing"
    result = run_statusthing("--api-addr", "127.0.0.1:0", "--db", str(folder / "st.db"))
    assert_one_line_failure(result, f"the folder {folder} does not exist")
    assert_one_line_failure(cli(folder / "st.db", "user", "list"), f"the folder {folder} does not exist")
    assert not (tmp_path / "var").exists()


def test_without_a_terminal_the_password_is_asked_for_on_stdin(server):
    result = run_statusthing("user", "passwd", "admin", "--db", server.db_path, new_session=True)
    assert_one_line_failure(result, "no terminal", "--stdin")
    assert can_write(server, basic(*ADMIN))


def test_ctrl_c_at_the_password_prompt_changes_nothing(server):
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command, with the pseudo-terminal as its controlling terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "statusthing.py", "user", "passwd", "admin", "--db",
                                   server.db_path], child_env())
    seen = b""
    while b"New password" not in seen:
        seen += os.read(terminal, 1024)
    os.write(terminal, b"\x03")  # Ctrl-C, as typed: the terminal sends SIGINT
    try:
        while chunk := os.read(terminal, 1024):
            seen += chunk
    except OSError:  # EIO once the child has gone
        pass
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 130
    assert b"interrupted" in seen and b"Traceback" not in seen
    assert can_write(server, basic(*ADMIN))


def test_memory_database(start_server, tmp_path):
    server = start_server(db_path=":memory:")
    assert server.start_line["db"] == ":memory:"
    assert server.post(ADD, '{"name": "kept in memory"}')[0] == 200
    assert b"kept in memory" in server.post("/statusthing.v1.ItemsService/ListItems", "{}")[2]
    assert not (ROOT / ":memory:").exists()
    warning = server.wait_log(lambda line: line.get("event") == "default_password")[0]["message"]
    assert "admin page" in warning and "passwd" not in warning
    assert_one_line_failure(cli(":memory:", "user", "list"), "in-memory")


def test_server_flags_come_from_the_environment_and_the_command_line_wins(start_server):
    from_env = start_server(env={"STATUSTHING_TITLE": "Env Title", "STATUSTHING_CORS_ORIGIN":
                                 "https://a.example, https://b.example"})
    conn = from_env.http()
    conn.request("GET", "/")
    assert b"<title>Env Title</title>" in conn.getresponse().read()
    for origin in ("https://a.example", "https://b.example"):
        headers = from_env.post("/statusthing.v1.ItemsService/ListItems", "{}", headers={"Origin": origin})[1]
        assert headers["Access-Control-Allow-Origin"] == origin
    from_env.stop()
    flag_wins = start_server("--title", "Flag Title", "--cors-origin", "https://c.example",
                             env={"STATUSTHING_TITLE": "Env Title", "STATUSTHING_CORS_ORIGIN": "https://a.example"})
    conn = flag_wins.http()
    conn.request("GET", "/")
    assert b"<title>Flag Title</title>" in conn.getresponse().read()
    headers = flag_wins.post("/statusthing.v1.ItemsService/ListItems", "{}", headers={"Origin": "https://a.example"})[1]
    assert "Access-Control-Allow-Origin" not in headers
    help_text = run_statusthing("--help").stdout
    assert "STATUSTHING_DB" in help_text and "STATUSTHING_TITLE" in help_text
