// Generated from proto/log.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "log": {
          "nested": {
            "Operation": {
              "values": {
                "OPERATION_PUT": 0,
                "OPERATION_DEL": 1,
                "OPERATION_PURGE": 2
              }
            },
            "Discard": {
              "values": {
                "DISCARD_OLD": 0,
                "DISCARD_NEW": 1
              }
            },
            "HeaderRecord": {
              "fields": {
                "format_version": {
                  "type": "uint32",
                  "id": 1
                },
                "next_stream_id": {
                  "type": "uint64",
                  "id": 2
                },
                "crc32c": {
                  "type": "fixed32",
                  "id": 15
                }
              }
            },
            "StreamRecord": {
              "fields": {
                "name": {
                  "type": "string",
                  "id": 1
                },
                "id": {
                  "type": "uint64",
                  "id": 2
                },
                "max_msgs_per_subject": {
                  "type": "sint64",
                  "id": 3
                },
                "max_age_ms": {
                  "type": "sint64",
                  "id": 4
                },
                "max_bytes": {
                  "type": "sint64",
                  "id": 5
                },
                "max_msgs": {
                  "type": "sint64",
                  "id": 6
                },
                "max_msg_size": {
                  "type": "sint64",
                  "id": 7
                },
                "discard": {
                  "type": "Discard",
                  "id": 8
                },
                "last_seq": {
                  "type": "uint64",
                  "id": 9
                },
                "vanished_high_seq": {
                  "type": "uint64",
                  "id": 10
                },
                "crc32c": {
                  "type": "fixed32",
                  "id": 15
                }
              }
            },
            "MessageRecord": {
              "fields": {
                "stream_id": {
                  "type": "uint64",
                  "id": 1
                },
                "seq": {
                  "type": "uint64",
                  "id": 2
                },
                "subject": {
                  "type": "string",
                  "id": 3
                },
                "payload": {
                  "type": "bytes",
                  "id": 4
                },
                "operation": {
                  "type": "Operation",
                  "id": 5
                },
                "timestamp_ms": {
                  "type": "uint64",
                  "id": 6
                },
                "crc32c": {
                  "type": "fixed32",
                  "id": 15
                }
              }
            },
            "MetaRecord": {
              "fields": {
                "key": {
                  "type": "string",
                  "id": 1
                },
                "value": {
                  "type": "bytes",
                  "id": 2
                },
                "crc32c": {
                  "type": "fixed32",
                  "id": 15
                }
              }
            }
          }
        }
      }
    }
  }
};
