// Generated from proto/client.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "client": {
          "nested": {
            "ClientFrame": {
              "oneofs": {
                "body": {
                  "oneof": [
                    "hello",
                    "bucket_create",
                    "bucket_info",
                    "bucket_delete",
                    "bucket_list",
                    "write",
                    "get",
                    "keys",
                    "history",
                    "watch",
                    "watch_credit",
                    "watch_stop",
                    "purge_deletes",
                    "cluster_status",
                    "ping",
                    "cluster_transfer",
                    "cluster_remove",
                    "cluster_add",
                    "snapshot_open",
                    "snapshot_read",
                    "snapshot_close"
                  ]
                }
              },
              "fields": {
                "id": {
                  "type": "uint64",
                  "id": 1
                },
                "hello": {
                  "type": "Hello",
                  "id": 2
                },
                "bucket_create": {
                  "type": "BucketCreate",
                  "id": 3
                },
                "bucket_info": {
                  "type": "BucketInfo",
                  "id": 4
                },
                "bucket_delete": {
                  "type": "BucketDelete",
                  "id": 5
                },
                "bucket_list": {
                  "type": "BucketList",
                  "id": 6
                },
                "write": {
                  "type": "WriteRequest",
                  "id": 7
                },
                "get": {
                  "type": "GetRequest",
                  "id": 8
                },
                "keys": {
                  "type": "KeysRequest",
                  "id": 9
                },
                "history": {
                  "type": "HistoryRequest",
                  "id": 10
                },
                "watch": {
                  "type": "WatchRequest",
                  "id": 11
                },
                "watch_credit": {
                  "type": "WatchCredit",
                  "id": 12
                },
                "watch_stop": {
                  "type": "WatchStop",
                  "id": 13
                },
                "purge_deletes": {
                  "type": "PurgeDeletesRequest",
                  "id": 14
                },
                "cluster_status": {
                  "type": "ClusterStatusRequest",
                  "id": 15
                },
                "ping": {
                  "type": "Ping",
                  "id": 16
                },
                "cluster_transfer": {
                  "type": "ClusterTransferRequest",
                  "id": 17
                },
                "cluster_remove": {
                  "type": "ClusterRemoveRequest",
                  "id": 18
                },
                "cluster_add": {
                  "type": "ClusterAddRequest",
                  "id": 19
                },
                "snapshot_open": {
                  "type": "SnapshotOpenRequest",
                  "id": 40
                },
                "snapshot_read": {
                  "type": "SnapshotReadRequest",
                  "id": 41
                },
                "snapshot_close": {
                  "type": "SnapshotCloseRequest",
                  "id": 42
                },
                "timeout_ms": {
                  "type": "uint32",
                  "id": 30
                }
              }
            },
            "Hello": {
              "fields": {
                "protocol_version": {
                  "type": "uint32",
                  "id": 1
                },
                "token": {
                  "type": "string",
                  "id": 2
                },
                "client_name": {
                  "type": "string",
                  "id": 3
                }
              }
            },
            "BucketConfig": {
              "oneofs": {
                "_history": {
                  "oneof": [
                    "history"
                  ]
                },
                "_ttl_ms": {
                  "oneof": [
                    "ttl_ms"
                  ]
                },
                "_max_value_size": {
                  "oneof": [
                    "max_value_size"
                  ]
                },
                "_max_bytes": {
                  "oneof": [
                    "max_bytes"
                  ]
                },
                "_replicas": {
                  "oneof": [
                    "replicas"
                  ]
                },
                "_description": {
                  "oneof": [
                    "description"
                  ]
                }
              },
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "history": {
                  "type": "uint32",
                  "id": 2,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "ttl_ms": {
                  "type": "uint64",
                  "id": 3,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "max_value_size": {
                  "type": "int64",
                  "id": 4,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "max_bytes": {
                  "type": "int64",
                  "id": 5,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "replicas": {
                  "type": "uint32",
                  "id": 6,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "description": {
                  "type": "string",
                  "id": 7,
                  "options": {
                    "proto3_optional": true
                  }
                }
              }
            },
            "BucketCreate": {
              "fields": {
                "config": {
                  "type": "BucketConfig",
                  "id": 1
                },
                "request_id": {
                  "type": "string",
                  "id": 2
                }
              }
            },
            "BucketInfo": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "stale": {
                  "type": "bool",
                  "id": 2
                }
              }
            },
            "BucketDelete": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "request_id": {
                  "type": "string",
                  "id": 2
                }
              }
            },
            "BucketList": {
              "fields": {
                "stale": {
                  "type": "bool",
                  "id": 1
                }
              }
            },
            "WriteOp": {
              "values": {
                "WRITE_OP_UNSPECIFIED": 0,
                "WRITE_OP_PUT": 1,
                "WRITE_OP_CREATE": 2,
                "WRITE_OP_UPDATE": 3,
                "WRITE_OP_DELETE": 4,
                "WRITE_OP_PURGE": 5
              }
            },
            "WriteRequest": {
              "oneofs": {
                "_last_revision": {
                  "oneof": [
                    "last_revision"
                  ]
                }
              },
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "op": {
                  "type": "WriteOp",
                  "id": 3
                },
                "value": {
                  "type": "bytes",
                  "id": 4
                },
                "last_revision": {
                  "type": "uint64",
                  "id": 5,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "request_id": {
                  "type": "string",
                  "id": 6
                }
              }
            },
            "GetRequest": {
              "oneofs": {
                "_revision": {
                  "oneof": [
                    "revision"
                  ]
                }
              },
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "revision": {
                  "type": "uint64",
                  "id": 3,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "stale": {
                  "type": "bool",
                  "id": 4
                }
              }
            },
            "KeysRequest": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "filter": {
                  "type": "string",
                  "id": 2
                },
                "stale": {
                  "type": "bool",
                  "id": 3
                },
                "after": {
                  "type": "string",
                  "id": 4
                },
                "limit": {
                  "type": "uint32",
                  "id": 5
                }
              }
            },
            "HistoryRequest": {
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "key": {
                  "type": "string",
                  "id": 2
                },
                "stale": {
                  "type": "bool",
                  "id": 3
                },
                "after_revision": {
                  "type": "uint64",
                  "id": 4
                }
              }
            },
            "WatchRequest": {
              "oneofs": {
                "_filter": {
                  "oneof": [
                    "filter"
                  ]
                },
                "_resume_from_revision": {
                  "oneof": [
                    "resume_from_revision"
                  ]
                }
              },
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "filter": {
                  "type": "string",
                  "id": 2,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "include_history": {
                  "type": "bool",
                  "id": 3
                },
                "ignore_deletes": {
                  "type": "bool",
                  "id": 4
                },
                "meta_only": {
                  "type": "bool",
                  "id": 5
                },
                "updates_only": {
                  "type": "bool",
                  "id": 6
                },
                "resume_from_revision": {
                  "type": "uint64",
                  "id": 7,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "credit": {
                  "type": "uint32",
                  "id": 8
                },
                "catch_up": {
                  "type": "bool",
                  "id": 9
                },
                "allow_reset": {
                  "type": "bool",
                  "id": 10
                },
                "progress_interval_ms": {
                  "type": "uint32",
                  "id": 11
                },
                "batch_entries": {
                  "type": "bool",
                  "id": 12
                }
              }
            },
            "WatchCredit": {
              "fields": {
                "watch_id": {
                  "type": "uint64",
                  "id": 1
                },
                "credit": {
                  "type": "uint32",
                  "id": 2
                }
              }
            },
            "WatchStop": {
              "fields": {
                "watch_id": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "PurgeDeletesRequest": {
              "oneofs": {
                "_older_than_ms": {
                  "oneof": [
                    "older_than_ms"
                  ]
                }
              },
              "fields": {
                "bucket": {
                  "type": "string",
                  "id": 1
                },
                "older_than_ms": {
                  "type": "int64",
                  "id": 2,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "request_id": {
                  "type": "string",
                  "id": 3
                }
              }
            },
            "ClusterStatusRequest": {
              "fields": {}
            },
            "ClusterTransferRequest": {
              "fields": {
                "to": {
                  "type": "string",
                  "id": 1
                }
              }
            },
            "ClusterAddRequest": {
              "fields": {
                "id": {
                  "type": "string",
                  "id": 1
                },
                "address": {
                  "type": "string",
                  "id": 2
                }
              }
            },
            "ClusterRemoveRequest": {
              "fields": {
                "id": {
                  "type": "string",
                  "id": 1
                }
              }
            },
            "Ping": {
              "fields": {}
            },
            "SnapshotOpenRequest": {
              "fields": {}
            },
            "SnapshotReadRequest": {
              "fields": {
                "snapshot_id": {
                  "type": "uint64",
                  "id": 1
                },
                "offset": {
                  "type": "uint64",
                  "id": 2
                },
                "max_bytes": {
                  "type": "uint32",
                  "id": 3
                }
              }
            },
            "SnapshotCloseRequest": {
              "fields": {
                "snapshot_id": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "ServerFrame": {
              "oneofs": {
                "body": {
                  "oneof": [
                    "hello_ok",
                    "bucket_status",
                    "bucket_list",
                    "write_result",
                    "get_result",
                    "keys_chunk",
                    "entries_chunk",
                    "watch_event",
                    "watch_end",
                    "purge_deletes_result",
                    "cluster_status",
                    "ack",
                    "pong",
                    "snapshot_opened",
                    "snapshot_chunk"
                  ]
                }
              },
              "fields": {
                "id": {
                  "type": "uint64",
                  "id": 1
                },
                "hello_ok": {
                  "type": "HelloOk",
                  "id": 2
                },
                "bucket_status": {
                  "type": "BucketStatus",
                  "id": 3
                },
                "bucket_list": {
                  "type": "BucketStatusList",
                  "id": 4
                },
                "write_result": {
                  "type": "WriteResult",
                  "id": 5
                },
                "get_result": {
                  "type": "GetResult",
                  "id": 6
                },
                "keys_chunk": {
                  "type": "KeysChunk",
                  "id": 7
                },
                "entries_chunk": {
                  "type": "EntriesChunk",
                  "id": 8
                },
                "watch_event": {
                  "type": "WatchEvent",
                  "id": 9
                },
                "watch_end": {
                  "type": "WatchEnd",
                  "id": 10
                },
                "purge_deletes_result": {
                  "type": "PurgeDeletesResult",
                  "id": 11
                },
                "cluster_status": {
                  "type": "ClusterStatus",
                  "id": 12
                },
                "ack": {
                  "type": "Ack",
                  "id": 13
                },
                "pong": {
                  "type": "Pong",
                  "id": 14
                },
                "snapshot_opened": {
                  "type": "SnapshotOpened",
                  "id": 40
                },
                "snapshot_chunk": {
                  "type": "SnapshotChunk",
                  "id": 41
                },
                "error": {
                  "type": "Error",
                  "id": 30
                }
              }
            },
            "Error": {
              "fields": {
                "code": {
                  "type": "string",
                  "id": 1
                },
                "message": {
                  "type": "string",
                  "id": 2
                },
                "details": {
                  "type": "ErrorDetails",
                  "id": 3
                }
              }
            },
            "ErrorDetails": {
              "oneofs": {
                "_current_revision": {
                  "oneof": [
                    "current_revision"
                  ]
                },
                "_first_revision": {
                  "oneof": [
                    "first_revision"
                  ]
                },
                "_last_revision": {
                  "oneof": [
                    "last_revision"
                  ]
                },
                "_leader_id": {
                  "oneof": [
                    "leader_id"
                  ]
                }
              },
              "fields": {
                "current_revision": {
                  "type": "uint64",
                  "id": 1,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "first_revision": {
                  "type": "uint64",
                  "id": 2,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "last_revision": {
                  "type": "uint64",
                  "id": 3,
                  "options": {
                    "proto3_optional": true
                  }
                },
                "leader_id": {
                  "type": "string",
                  "id": 4,
                  "options": {
                    "proto3_optional": true
                  }
                }
              }
            },
            "HelloOk": {
              "fields": {
                "protocol_version": {
                  "type": "uint32",
                  "id": 1
                },
                "server_id": {
                  "type": "string",
                  "id": 2
                },
                "max_frame_bytes": {
                  "type": "uint64",
                  "id": 3
                }
              }
            },
            "Operation": {
              "values": {
                "OPERATION_PUT": 0,
                "OPERATION_DEL": 1,
                "OPERATION_PURGE": 2
              }
            },
            "Entry": {
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
                "revision": {
                  "type": "uint64",
                  "id": 4
                },
                "created_ms": {
                  "type": "int64",
                  "id": 5
                },
                "delta": {
                  "type": "uint64",
                  "id": 6
                },
                "operation": {
                  "type": "Operation",
                  "id": 7
                },
                "size": {
                  "type": "uint64",
                  "id": 8
                }
              }
            },
            "BucketStatus": {
              "fields": {
                "config": {
                  "type": "BucketConfig",
                  "id": 1
                },
                "values": {
                  "type": "uint64",
                  "id": 2
                },
                "bytes": {
                  "type": "uint64",
                  "id": 3
                },
                "first_revision": {
                  "type": "uint64",
                  "id": 4
                },
                "last_revision": {
                  "type": "uint64",
                  "id": 5
                },
                "leader": {
                  "type": "string",
                  "id": 6
                },
                "replica_nodes": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 7
                },
                "value_limit_bytes": {
                  "type": "uint64",
                  "id": 8
                }
              }
            },
            "BucketStatusList": {
              "fields": {
                "buckets": {
                  "rule": "repeated",
                  "type": "BucketStatus",
                  "id": 1
                }
              }
            },
            "WriteResult": {
              "fields": {
                "revision": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "GetResult": {
              "fields": {
                "entry": {
                  "type": "Entry",
                  "id": 1
                }
              }
            },
            "KeysChunk": {
              "fields": {
                "keys": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 1
                },
                "done": {
                  "type": "bool",
                  "id": 2
                }
              }
            },
            "EntriesChunk": {
              "fields": {
                "entries": {
                  "rule": "repeated",
                  "type": "Entry",
                  "id": 1
                },
                "done": {
                  "type": "bool",
                  "id": 2
                }
              }
            },
            "WatchEvent": {
              "oneofs": {
                "event": {
                  "oneof": [
                    "entry",
                    "init_done",
                    "catch_up",
                    "progress",
                    "entries"
                  ]
                }
              },
              "fields": {
                "entry": {
                  "type": "Entry",
                  "id": 1
                },
                "init_done": {
                  "type": "InitDone",
                  "id": 2
                },
                "catch_up": {
                  "type": "CatchUp",
                  "id": 3
                },
                "progress": {
                  "type": "WatchProgress",
                  "id": 4
                },
                "entries": {
                  "type": "WatchEntries",
                  "id": 5
                }
              }
            },
            "WatchEntries": {
              "fields": {
                "entries": {
                  "rule": "repeated",
                  "type": "Entry",
                  "id": 1
                }
              }
            },
            "CatchUp": {
              "fields": {
                "from_revision": {
                  "type": "uint64",
                  "id": 1
                },
                "to_revision": {
                  "type": "uint64",
                  "id": 2
                },
                "reset": {
                  "type": "bool",
                  "id": 3
                }
              }
            },
            "WatchProgress": {
              "fields": {
                "revision": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "InitDone": {
              "fields": {
                "revision": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "WatchEnd": {
              "fields": {}
            },
            "PurgeDeletesResult": {
              "fields": {
                "purged": {
                  "type": "uint64",
                  "id": 1
                }
              }
            },
            "PeerState": {
              "fields": {
                "id": {
                  "type": "string",
                  "id": 1
                },
                "address": {
                  "type": "string",
                  "id": 2
                },
                "match_index": {
                  "type": "uint64",
                  "id": 3
                },
                "voter": {
                  "type": "bool",
                  "id": 4
                },
                "client_url": {
                  "type": "string",
                  "id": 5
                }
              }
            },
            "ClusterStatus": {
              "fields": {
                "id": {
                  "type": "string",
                  "id": 1
                },
                "role": {
                  "type": "string",
                  "id": 2
                },
                "term": {
                  "type": "uint64",
                  "id": 3
                },
                "leader": {
                  "type": "string",
                  "id": 4
                },
                "commit_index": {
                  "type": "uint64",
                  "id": 5
                },
                "applied_index": {
                  "type": "uint64",
                  "id": 6
                },
                "peers": {
                  "rule": "repeated",
                  "type": "PeerState",
                  "id": 7
                },
                "buckets": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 8
                },
                "replicated": {
                  "type": "bool",
                  "id": 9
                },
                "cluster_id": {
                  "type": "string",
                  "id": 10
                }
              }
            },
            "Ack": {
              "fields": {}
            },
            "Pong": {
              "fields": {}
            },
            "SnapshotHeader": {
              "fields": {
                "format_version": {
                  "type": "uint32",
                  "id": 1
                },
                "cluster_id": {
                  "type": "string",
                  "id": 2
                },
                "node_id": {
                  "type": "string",
                  "id": 3
                },
                "voters": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 4
                },
                "learners": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 5
                },
                "raft_index": {
                  "type": "uint64",
                  "id": 6
                },
                "raft_term": {
                  "type": "uint64",
                  "id": 7
                },
                "created_ms": {
                  "type": "int64",
                  "id": 8
                },
                "streamkv_version": {
                  "type": "string",
                  "id": 9
                },
                "buckets": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 10
                }
              }
            },
            "SnapshotOpened": {
              "fields": {
                "snapshot_id": {
                  "type": "uint64",
                  "id": 1
                },
                "header": {
                  "type": "SnapshotHeader",
                  "id": 2
                }
              }
            },
            "SnapshotChunk": {
              "fields": {
                "offset": {
                  "type": "uint64",
                  "id": 1
                },
                "data": {
                  "type": "bytes",
                  "id": 2
                },
                "done": {
                  "type": "bool",
                  "id": 3
                },
                "image_sha256": {
                  "type": "bytes",
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
