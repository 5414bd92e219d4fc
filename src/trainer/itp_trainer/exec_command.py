"""`python -m itp_trainer.exec_command PROGRAM ARGS...`: becomes PROGRAM (os.execvp), keeping this process's id,
group and parent-death signal. How a process executor, which starts Python modules, starts another program as a job:
a `serve` stage's model server (vLLM, SGLang, TGI, or a test's stand-in)."""
import os
import sys

if len(sys.argv) < 2:
    sys.exit("usage: python -m itp_trainer.exec_command PROGRAM [ARGS...]")
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as e:
    sys.stderr.write(f"cannot run {sys.argv[1]}: {e.strerror}\n")
    sys.exit(127)
