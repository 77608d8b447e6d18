"""What operators watch: Prometheus metrics, the canary and Flower's configuration.

* ``prometheus``: the collector behind ``callstore metrics serve`` — queue depths, dead
  letters, spool, partition horizon, migration lag, job ages, canary (read at scrape time);
* ``canary``: a message through the ``calls`` queue every minute, proving workers consume;
* ``flower``: Flower's options from the ``CALLSTORE_*`` settings (users, persistence).

Three meanings of "metrics" live in callstore, each with its own name: the *summary* of a call
(``worker.calls.summary``, columns of ``calls``), the runtime's *measurements* of a call
(``call_metrics``, ``MetricType``), and the *Prometheus* metrics of the system (here).
"""
