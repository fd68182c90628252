// Generated from proto/kv.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "kv": {
          "nested": {
            "BucketConfig": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "history": {
                  "type": "uint32",
                  "id": 2
                },
                "ttl_ms": {
                  "type": "uint64",
                  "id": 3
                },
                "max_value_size": {
                  "type": "sint64",
                  "id": 4
                },
                "max_bytes": {
                  "type": "sint64",
                  "id": 5
                },
                "replicas": {
                  "type": "uint32",
                  "id": 6
                },
                "description": {
                  "type": "string",
                  "id": 7
                }
              }
            },
            "CreateBucket": {
              "fields": {
                "config": {
                  "type": "BucketConfig",
                  "id": 1
                }
              }
            },
            "UpdateBucket": {
              "fields": {
                "config": {
                  "type": "BucketConfig",
                  "id": 1
                }
              }
            },
            "DeleteBucket": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                }
              }
            },
            "Put": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "value": {
                  "type": "bytes",
                  "id": 3
                }
              }
            },
            "Create": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "value": {
                  "type": "bytes",
                  "id": 3
                }
              }
            },
            "Update": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "value": {
                  "type": "bytes",
                  "id": 3
                },
                "last": {
                  "type": "uint64",
                  "id": 4
                }
              }
            },
            "Delete": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "has_last": {
                  "type": "bool",
                  "id": 3
                },
                "last": {
                  "type": "uint64",
                  "id": 4
                }
              }
            },
            "Purge": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "has_last": {
                  "type": "bool",
                  "id": 3
                },
                "last": {
                  "type": "uint64",
                  "id": 4
                }
              }
            },
            "PurgeDeletes": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "older_than_ms": {
                  "type": "sint64",
                  "id": 2
                }
              }
            },
            "TimeAdvance": {
              "fields": {}
            },
            "RequestId": {
              "fields": {
                "client_id": {
                  "type": "string",
                  "id": 1
                },
                "sequence": {
                  "type": "uint64",
                  "id": 2
                },
                "id": {
                  "type": "string",
                  "id": 3
                }
              }
            },
            "NodeLimits": {
              "fields": {
                "max_buckets": {
                  "type": "uint64",
                  "id": 1
                },
                "max_stored_bytes": {
                  "type": "uint64",
                  "id": 2
                },
                "voters": {
                  "type": "uint32",
                  "id": 3
                }
              }
            },
            "Command": {
              "oneofs": {
                "op": {
                  "oneof": [
                    "create_bucket",
                    "update_bucket",
                    "delete_bucket",
                    "put",
                    "create",
                    "update",
                    "delete",
                    "purge",
                    "purge_deletes",
                    "time_advance"
                  ]
                }
              },
              "fields": {
                "timestamp_ms": {
                  "type": "uint64",
                  "id": 1
                },
                "request": {
                  "type": "RequestId",
                  "id": 2
                },
                "limits": {
                  "type": "NodeLimits",
                  "id": 3
                },
                "create_bucket": {
                  "type": "CreateBucket",
                  "id": 10
                },
                "update_bucket": {
                  "type": "UpdateBucket",
                  "id": 11
                },
                "delete_bucket": {
                  "type": "DeleteBucket",
                  "id": 12
                },
                "put": {
                  "type": "Put",
                  "id": 13
                },
                "create": {
                  "type": "Create",
                  "id": 14
                },
                "update": {
                  "type": "Update",
                  "id": 15
                },
                "delete": {
                  "type": "Delete",
                  "id": 16
                },
                "purge": {
                  "type": "Purge",
                  "id": 17
                },
                "purge_deletes": {
                  "type": "PurgeDeletes",
                  "id": 18
                },
                "time_advance": {
                  "type": "TimeAdvance",
                  "id": 19
                }
              }
            },
            "ErrorInfo": {
              "fields": {
                "code": {
                  "type": "string",
                  "id": 1
                },
                "message": {
                  "type": "string",
                  "id": 2
                },
                "current_revision": {
                  "type": "sint64",
                  "id": 3
                },
                "first_revision": {
                  "type": "sint64",
                  "id": 4
                }
              }
            },
            "CommandResult": {
              "fields": {
                "ok": {
                  "type": "bool",
                  "id": 1
                },
                "revision": {
                  "type": "uint64",
                  "id": 2
                },
                "count": {
                  "type": "uint64",
                  "id": 3
                },
                "error": {
                  "type": "ErrorInfo",
                  "id": 4
                }
              }
            },
            "DedupeRecord": {
              "fields": {
                "index": {
                  "type": "uint64",
                  "id": 1
                },
                "request_key": {
                  "type": "string",
                  "id": 2
                },
                "result": {
                  "type": "CommandResult",
                  "id": 3
                }
              }
            },
            "AppliedState": {
              "fields": {
                "index": {
                  "type": "uint64",
                  "id": 1
                },
                "clock_ms": {
                  "type": "uint64",
                  "id": 2
                },
                "records": {
                  "type": "uint64",
                  "id": 3
                },
                "window": {
                  "type": "uint32",
                  "id": 4
                }
              }
            }
          }
        }
      }
    }
  }
};
