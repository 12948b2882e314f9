from consortia.cli.main import app

app(prog_name="consortia")
