"""Alerting: rules on P2P and spot metrics, their states, and notifications.

The pieces, each a registry or a pure function where it can be:
- model: the states, conditions and rule record every layer shares;
- metrics: the metric registry (one function per metric, set-based over subjects);
- conditions: the condition registry (value, previous value, reference -> bool);
- machine: the state machine (Normal, Pending, Firing, Recovering, NoData, Error);
- rules: validation of a rule's JSON into a record, naming the bad field;
- channels: contact point kinds (webhook, Apprise, e-mail) and how each is sent;
- payload: the Alertmanager webhook body;
- secrets: contact point secrets encrypted at rest.
Evaluation and delivery run in the ingest leader (ingest/alerts.py); queries in db/alerts.py.
"""
