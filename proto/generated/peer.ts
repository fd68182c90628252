// Generated from proto/peer.proto by `npm run proto:gen`. Do not edit.
export const descriptor = {
  "nested": {
    "streamkv": {
      "nested": {
        "peer": {
          "nested": {
            "PeerFrame": {
              "oneofs": {
                "body": {
                  "oneof": [
                    "hello",
                    "raft",
                    "error",
                    "forward_request",
                    "forward_response",
                    "challenge",
                    "auth"
                  ]
                }
              },
              "fields": {
                "hello": {
                  "type": "PeerHello",
                  "id": 1
                },
                "raft": {
                  "type": "bytes",
                  "id": 2
                },
                "error": {
                  "type": "PeerError",
                  "id": 3
                },
                "forward_request": {
                  "type": "ForwardRequest",
                  "id": 4
                },
                "forward_response": {
                  "type": "ForwardResponse",
                  "id": 5
                },
                "challenge": {
                  "type": "PeerChallenge",
                  "id": 6
                },
                "auth": {
                  "type": "PeerAuth",
                  "id": 7
                }
              }
            },
            "PeerHello": {
              "fields": {
                "protocol_version": {
                  "type": "uint32",
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
                "cluster_id": {
                  "type": "string",
                  "id": 4
                },
                "address": {
                  "type": "string",
                  "id": 5
                },
                "nonce": {
                  "type": "bytes",
                  "id": 6
                },
                "client_url": {
                  "type": "string",
                  "id": 7
                }
              }
            },
            "PeerChallenge": {
              "fields": {
                "nonce": {
                  "type": "bytes",
                  "id": 1
                },
                "proof": {
                  "type": "bytes",
                  "id": 2
                }
              }
            },
            "PeerAuth": {
              "fields": {
                "proof": {
                  "type": "bytes",
                  "id": 1
                }
              }
            },
            "PeerError": {
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
                  "type": "PeerErrorDetails",
                  "id": 3
                }
              }
            },
            "PeerErrorDetails": {
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
            "ForwardRequest": {
              "fields": {
                "id": {
                  "type": "uint64",
                  "id": 1
                },
                "session": {
                  "type": "string",
                  "id": 2
                },
                "command": {
                  "type": "bytes",
                  "id": 3
                }
              }
            },
            "ForwardResponse": {
              "fields": {
                "id": {
                  "type": "uint64",
                  "id": 1
                },
                "session": {
                  "type": "string",
                  "id": 2
                },
                "revision": {
                  "type": "uint64",
                  "id": 3
                },
                "count": {
                  "type": "uint64",
                  "id": 4
                },
                "index": {
                  "type": "uint64",
                  "id": 5
                },
                "error": {
                  "type": "PeerError",
                  "id": 6
                }
              }
            }
          }
        }
      }
    }
  }
};
