"""Data validation stages after MediaExampleGen: the schema with train labels, and the gate.

`MediaSchemaGen` extends the curated schema (core/schema/schema.pbtxt) with the domains
only the data and the config know; `DataValidationGate` fails the run on any anomaly that
ExampleValidator found, so that training never starts on bad data.
"""
