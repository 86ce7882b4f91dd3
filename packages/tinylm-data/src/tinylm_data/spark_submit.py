"""Entry file for `spark-submit`, which runs a path rather than a module: the usual CLI."""

from tinylm_data.cli import app

if __name__ == "__main__":
    app(prog_name="tinylm-data")
