"""The gRPC API: thin servicers over the stages.

``service`` and ``scoring_service`` translate proto messages to typed records
(``convert``) and delegate to runs, data and scoring; ``error_mapping`` is the one place
where the error tree becomes gRPC status codes; ``auth`` checks bearer tokens.
"""
