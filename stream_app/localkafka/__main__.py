"""``python -m stream_app.localkafka up|down|status|version|run``: the `kafka` command group."""

from stream_app.commands.kafka import kafka

if __name__ == "__main__":
    kafka(prog_name="python -m stream_app.localkafka")
