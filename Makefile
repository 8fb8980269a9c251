# The two commands of the README. Both set up a fresh checkout on their own.
.PHONY: demo test bootstrap

demo:  ## the main job: a local fleet, end to end, on the embedded defaults
	bash deploy/bootstrap.sh
	.venv/bin/printfleet demo

test:  ## every test, on a real Kafka broker and ClickHouse server it starts and stops
	bash deploy/run-tests.sh

bootstrap:
	bash deploy/bootstrap.sh
