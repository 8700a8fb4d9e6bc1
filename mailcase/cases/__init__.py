"""Cases: the case rules every door uses, and the views of a case.

``book`` holds the rules (numbering, the status lifecycle, comments, collaborators, the
feed) for whoever changes a case: the pipeline for mail, ``desk`` for what agents do
from the CLI (and the API and console as they come), so no door writes to a case on its
own. ``views`` gives the dictionaries behind ``cases list|show`` and their ``--json``.

May import: ``outbound`` (a change queues its mail in the same transaction),
``identity``, ``reading``, ``store``, ``config``. Never the pipeline, intake, service
or CLI.
"""
