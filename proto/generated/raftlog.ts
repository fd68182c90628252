// Generated from proto/raftlog.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "raftlog": {
          "nested": {
            "HardStateRecord": {
              "fields": {
                "current_term": {
                  "type": "uint64",
                  "id": 1
                },
                "voted_for": {
                  "type": "string",
                  "id": 2
                },
                "has_voted_for": {
                  "type": "bool",
                  "id": 3
                },
                "commit_index": {
                  "type": "uint64",
                  "id": 4
                }
              }
            },
            "ConfStateRecord": {
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
            "SnapshotMetaRecord": {
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
                  "type": "ConfStateRecord",
                  "id": 3
                }
              }
            },
            "EntryRecord": {
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
            }
          }
        }
      }
    }
  }
};
