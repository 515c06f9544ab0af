"""Reports as pure renderers: results in, markdown and plots out (one module per flow's report).

No renderer reads a file, runs a model or talks to Prefect; ``tasks.report.publish_task`` writes what they
render to the run folder and to the Prefect UI. Statistics live in ``winnow.stats``.
"""
