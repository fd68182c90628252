// Generated from proto/raft.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "raft": {
          "nested": {
            "ConfState": {
              "fields": {
                "voters": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 1
                },
                "learners": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 2
                }
              }
            },
            "SnapshotMeta": {
              "fields": {
                "index": {
                  "type": "uint64",
                  "id": 1
                },
                "term": {
                  "type": "uint64",
                  "id": 2
                },
                "conf": {
                  "type": "ConfState",
                  "id": 3
                }
              }
            },
            "Entry": {
              "fields": {
                "index": {
                  "type": "uint64",
                  "id": 1
                },
                "term": {
                  "type": "uint64",
                  "id": 2
                },
                "type": {
                  "type": "uint32",
                  "id": 3
                },
                "data": {
                  "type": "bytes",
                  "id": 4
                }
              }
            },
            "SnapshotChunk": {
              "fields": {
                "meta": {
                  "type": "SnapshotMeta",
                  "id": 1
                },
                "offset": {
                  "type": "uint64",
                  "id": 2
                },
                "data": {
                  "type": "bytes",
                  "id": 3
                },
                "done": {
                  "type": "bool",
                  "id": 4
                }
              }
            },
            "MessageType": {
              "values": {
                "MSG_APP": 0,
                "MSG_APP_RESP": 1,
                "MSG_VOTE": 2,
                "MSG_VOTE_RESP": 3,
                "MSG_PRE_VOTE": 4,
                "MSG_PRE_VOTE_RESP": 5,
                "MSG_HEARTBEAT": 6,
                "MSG_HEARTBEAT_RESP": 7,
                "MSG_SNAP": 8,
                "MSG_SNAP_RESP": 9,
                "MSG_READ_INDEX": 10,
                "MSG_READ_INDEX_RESP": 11,
                "MSG_TIMEOUT_NOW": 12
              }
            },
            "Message": {
              "fields": {
                "type": {
                  "type": "MessageType",
                  "id": 1
                },
                "from": {
                  "type": "string",
                  "id": 2
                },
                "to": {
                  "type": "string",
                  "id": 3
                },
                "term": {
                  "type": "uint64",
                  "id": 4
                },
                "log_term": {
                  "type": "uint64",
                  "id": 5
                },
                "index": {
                  "type": "uint64",
                  "id": 6
                },
                "entries": {
                  "rule": "repeated",
                  "type": "Entry",
                  "id": 7
                },
                "commit": {
                  "type": "uint64",
                  "id": 8
                },
                "reject": {
                  "type": "bool",
                  "id": 9
                },
                "reject_hint": {
                  "type": "uint64",
                  "id": 10
                },
                "context": {
                  "type": "uint64",
                  "id": 11
                },
                "transfer": {
                  "type": "bool",
                  "id": 12
                },
                "snapshot": {
                  "type": "SnapshotChunk",
                  "id": 13
                },
                "snapshot_index": {
                  "type": "uint64",
                  "id": 14
                },
                "snapshot_offset": {
                  "type": "uint64",
                  "id": 15
                }
              }
            },
            "ConfChange": {
              "fields": {
                "type": {
                  "type": "uint32",
                  "id": 1
                },
                "node_id": {
                  "type": "string",
                  "id": 2
                },
                "conf": {
                  "type": "ConfState",
                  "id": 3
                },
                "context": {
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
