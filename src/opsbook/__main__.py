from opsbook.cli.main import run

run()
