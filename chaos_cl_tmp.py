import asyncio, sys
from benchmarks.chaos import ChaosOptions, run_chaos, format_report, KILL_LEADER
from deploy.settings import StackSettings
st = StackSettings.from_env()
opts = ChaosOptions(minutes=1.0, seed=2, printers=3, faults=(KILL_LEADER,), fault_every_s=20, drain_timeout_s=240)
r = asyncio.run(run_chaos(st, opts, lambda l: print(l, file=sys.stderr, flush=True), kafka=st.kafka_sasl_ssl() if "sasl" in sys.argv else None))
print(format_report(r))
