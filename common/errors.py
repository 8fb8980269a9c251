"""The root of every error printfleet raises on purpose, and the whole tree under it.

Each package keeps its subtree in its own `errors.py` (as aiokafka's `KafkaError` and
quixstreams' `QuixException` are roots of theirs), and that file's docstring draws the
subtree in full. Every class says whether calling again later can succeed (`retriable`);
retry loops read that attribute, never the type. Code that has to stop on anything of
printfleet's (a CLI command) catches `PrintfleetError`; exceptions of aiokafka, aiohttp
and clickhouse-connect are translated at one boundary per client and never reach it.

    PrintfleetError                    retriable only where a class below says so
    ├── SchemaError                    schemas/errors.py
    │   ├── SchemaLoadError
    │   ├── UnknownSchemaError
    │   ├── RecordEncodeError
    │   └── DecodeError
    │       ├── NotSingleObjectError
    │       ├── UnknownFingerprintError
    │       ├── UnexpectedKindError
    │       └── CorruptBodyError
    │           ├── TruncatedBodyError
    │           └── TrailingBytesError
    ├── ProducerError                  producers/errors.py
    │   ├── SpoolError
    │   │   ├── SpoolLocked            retriable
    │   │   ├── SpoolFull              retriable
    │   │   ├── SpoolWriteFailed       retriable
    │   │   ├── RecordTooLarge
    │   │   ├── InvalidAck
    │   │   ├── SpoolClosed
    │   │   ├── SpoolBroken
    │   │   ├── SpoolConfigError       (also a ValueError)
    │   │   └── FrameError             internal to the spool, which raises SpoolBroken
    │   ├── CollectorError
    │   │   ├── PrinterUnavailable     retriable
    │   │   │   └── OpcUaRefused       retriable
    │   │   ├── MappingError
    │   │   └── CollectorConfigError   (also a ValueError)
    │   ├── UploadFormatError
    │   │   ├── FramingError
    │   │   └── TooLarge
    │   ├── GatewayError
    │   │   ├── Refused                retriable when its status is 429 or 503
    │   │   └── EnrolmentError         (also a ValueError)
    │   ├── SimulatorError             producers/simulator/errors.py
    │   │   ├── NotFoundError
    │   │   │   ├── UnknownPrinterError
    │   │   │   └── UnknownLogError
    │   │   ├── BadRequestError
    │   │   └── ServerStartError       retriable
    │   └── OpcUaModelError            producers/opcua_model/errors.py
    │       ├── NodesetLoadError
    │       └── PkiError
    ├── StreamsError                   streams/errors.py
    │   ├── InvalidRecordError         (also a ValueError)
    │   ├── StateDecodeError           (also a ValueError)
    │   └── InvalidVersionError        (also a ValueError)
    ├── SinkError                      sinks/errors.py
    │   ├── SchemaMappingError
    │   ├── ConvertError
    │   ├── ClickHouseError
    │   │   ├── ClickHouseUnavailable  retriable
    │   │   └── ClickHouseRejected
    │   ├── MigrationError
    │   ├── QueryError
    │   └── WebhookError               sinks/webhook/errors.py (`printfleet alerts forward`)
    │       ├── ReceiverUnavailable    retriable
    │       └── ReceiverRefused
    ├── StackError                     deploy/errors.py
    │   ├── AlreadyRunning
    │   ├── PortInUse                  retriable
    │   ├── NotInstalled
    │   └── StartFailed                retriable
    ├── DashboardError                 dashboard/errors.py (`printfleet dashboard`)
    │   ├── UsersFileError             (also a ValueError)
    │   └── FeedFailed                 retriable
    ├── KafkaLayerError                common/kafka/errors.py
    │   ├── KafkaUnavailable           retriable
    │   │   └── KafkaRefused
    │   └── TopicMismatch
    ├── CertificateError               common/tls.py
    ├── SettingsError                  common/settings.py (also a ValueError)
    ├── OpsListenError                 common/ops.py (the metrics and health listener)
    ├── WorkerFailed                   printfleet/demo_pipeline.py (`printfleet demo`)
    ├── DemoSetupError                 printfleet/demo_pipeline.py (the demo's signing key)
    └── BenchError                     benchmarks/ingest/site.py (`printfleet bench`)

To add an error: put it under its package's root (or an intermediate class named after
the component), give it an explicit `retriable`, and draw it here and in its package's
`errors.py`. `tests/unit/common/test_errors.py` fails for an exception class of common,
schemas, producers, streams, sinks, deploy or dashboard that is not under this root.
"""

from __future__ import annotations


class PrintfleetError(Exception):
    """Root of every error printfleet raises on purpose."""

    retriable: bool = False
