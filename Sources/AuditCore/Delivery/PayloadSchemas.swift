import Foundation

/// The payload schemas, as in `schemas/` (a test keeps the two identical): every payload is
/// validated against its schema before it is queued.
public enum PayloadSchemas {
    /// `schemas/rbacwatch.finding-2.schema.json`
    public static let findingText = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "rbacwatch.finding/2",
  "title": "rbacwatch audit finding",
  "description": "One audit finding as rbacwatch delivers it (and as watch prints it). A rule fired on a Genesys Cloud audit event. The id is stable across retries and replays: receivers dedupe on it.",
  "type": "object",
  "required": ["schema", "id", "kind", "organization", "fingerprint", "ruleId", "title", "severity", "controls", "eventDate", "eventIds", "source", "serviceName", "action", "actor", "target", "evidence", "status"],
  "additionalProperties": false,
  "properties": {
    "schema": {"const": "rbacwatch.finding/2"},
    "id": {"type": "string", "minLength": 1, "description": "fingerprint:event id"},
    "kind": {"const": "finding"},
    "organization": {"$ref": "#/$defs/organization"},
    "fingerprint": {"type": "string", "minLength": 1, "description": "What an approval names: the same change gets the same fingerprint."},
    "ruleId": {"type": "string", "minLength": 1},
    "title": {"type": "string"},
    "severity": {"$ref": "#/$defs/severity"},
    "controls": {"type": "array", "items": {"type": "string"}, "description": "Control ids (NIST, SOC 2, ISO 27001)."},
    "eventDate": {"type": "string", "format": "date-time"},
    "eventIds": {"type": "array", "items": {"type": "string"}},
    "source": {"const": "genesys-cloud-audit"},
    "serviceName": {"type": "string"},
    "action": {"type": "string"},
    "actor": {"$ref": "#/$defs/actor"},
    "target": {
      "type": "object",
      "required": ["type", "id", "name"],
      "additionalProperties": false,
      "properties": {"type": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"}}
    },
    "changes": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["property", "before", "after"],
        "additionalProperties": false,
        "properties": {
          "property": {"type": "string"},
          "before": {"type": "array", "items": {"type": "string"}},
          "after": {"type": "array", "items": {"type": "string"}}
        }
      }
    },
    "evidence": {"type": "array", "items": {"type": "string"}},
    "status": {"enum": ["open", "approved"]},
    "approval": {"$ref": "#/$defs/approval"}
  },
  "$defs": {
    "severity": {"enum": ["low", "medium", "high", "critical"]},
    "organization": {
      "type": "object",
      "required": ["id", "name"],
      "additionalProperties": false,
      "properties": {"id": {"type": "string", "minLength": 1}, "name": {"type": "string"}}
    },
    "actor": {
      "type": "object",
      "required": ["name", "remoteIp"],
      "additionalProperties": false,
      "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "clientId": {"type": "string"},
        "remoteIp": {"type": "array", "items": {"type": "string"}}
      }
    },
    "approval": {
      "type": "object",
      "required": ["approver", "createdAt", "expiresAt", "fingerprint"],
      "additionalProperties": false,
      "properties": {
        "approver": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "expiresAt": {"type": "string", "format": "date-time"},
        "fingerprint": {"type": "string"},
        "inherited": {"type": "boolean"},
        "note": {"type": "string"},
        "ticket": {"type": "string"}
      }
    }
  }
}
"""#

    /// `schemas/rbacwatch.drift-item-2.schema.json`
    public static let driftItemText = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "rbacwatch.drift-item/2",
  "title": "rbacwatch drift item",
  "description": "One difference between the approved RBAC baseline and the organisation now, as rbacwatch delivers it. The id (the fingerprint) is stable: the same change is always the same id.",
  "type": "object",
  "required": ["schema", "id", "kind", "organization", "fingerprint", "severity", "escalation", "summary", "subject", "detectedAt", "source", "status", "reasons", "permissionsAdded", "permissionsRemoved"],
  "additionalProperties": false,
  "properties": {
    "schema": {"const": "rbacwatch.drift-item/2"},
    "id": {"type": "string", "minLength": 1},
    "kind": {"enum": ["userAdded", "userRemoved", "userStateChanged", "userDivisionMoved", "permissionsGained", "permissionsLost", "roleCreated", "roleDeleted", "roleRenamed", "roleModified", "roleRecreated", "grantAdded", "grantRemoved", "groupCreated", "groupDeleted", "groupMemberAdded", "groupMemberRemoved", "groupRolesEnabledChanged", "oauthClientCreated", "oauthClientDeleted", "divisionCreated", "divisionDeleted", "divisionRenamed"]},
    "organization": {
      "type": "object",
      "required": ["id", "name"],
      "additionalProperties": false,
      "properties": {"id": {"type": "string", "minLength": 1}, "name": {"type": "string"}}
    },
    "fingerprint": {"type": "string", "minLength": 1},
    "cause": {"type": "string", "description": "The fingerprint of the change that caused this one (a grant to a group, for each member's gain)."},
    "severity": {"enum": ["low", "medium", "high", "critical"]},
    "escalation": {"type": "boolean"},
    "summary": {"type": "string"},
    "reasons": {"type": "array", "items": {"type": "string"}},
    "subject": {"$ref": "#/$defs/entity"},
    "role": {"$ref": "#/$defs/entity"},
    "previous": {"$ref": "#/$defs/entity"},
    "division": {"$ref": "#/$defs/entity"},
    "via": {"$ref": "#/$defs/entity"},
    "member": {"$ref": "#/$defs/entity"},
    "permissionsAdded": {"type": "array", "items": {"type": "string"}},
    "permissionsRemoved": {"type": "array", "items": {"type": "string"}},
    "before": {"type": "string"},
    "after": {"type": "string"},
    "detectedAt": {"type": "string", "format": "date-time"},
    "baselineVersion": {"type": "integer", "minimum": 1},
    "source": {"const": "rbacwatch-drift"},
    "status": {"enum": ["unapproved", "approved", "approved-by-cause", "lapsed"]},
    "approval": {
      "type": "object",
      "required": ["approver", "createdAt", "expiresAt", "fingerprint"],
      "additionalProperties": false,
      "properties": {
        "approver": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "expiresAt": {"type": "string", "format": "date-time"},
        "fingerprint": {"type": "string"},
        "inherited": {"type": "boolean"},
        "note": {"type": "string"},
        "ticket": {"type": "string"}
      }
    },
    "actor": {
      "type": "object",
      "required": ["name", "remoteIp"],
      "additionalProperties": false,
      "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "clientId": {"type": "string"},
        "remoteIp": {"type": "array", "items": {"type": "string"}}
      }
    },
    "attribution": {
      "type": "object",
      "required": ["status", "events"],
      "additionalProperties": false,
      "properties": {
        "status": {"enum": ["explained", "unexplained", "pending"]},
        "events": {
          "type": "array",
          "items": {
            "type": "object",
            "required": ["id", "date", "action", "actor"],
            "additionalProperties": false,
            "properties": {
              "id": {"type": "string"},
              "date": {"type": "string", "format": "date-time"},
              "action": {"type": "string"},
              "actor": {"type": "string"},
              "clientId": {"type": "string"},
              "entityType": {"type": "string"},
              "remoteIp": {"type": "array", "items": {"type": "string"}},
              "serviceName": {"type": "string"},
              "userId": {"type": "string"}
            }
          }
        }
      }
    }
  },
  "$defs": {
    "entity": {
      "type": "object",
      "required": ["id", "kind"],
      "additionalProperties": false,
      "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["user", "group", "oauthClient", "role", "division", "trustee", "unknown"]},
        "name": {"type": "string"}
      }
    }
  }
}
"""#

    /// The file names in `schemas/`, by payload kind.
    public static func fileName(_ kind: DeliveryPayload.Kind) -> String {
        switch kind {
        case .finding: "rbacwatch.finding-2.schema.json"
        case .driftItem: "rbacwatch.drift-item-2.schema.json"
        }
    }

    public static func text(_ kind: DeliveryPayload.Kind) -> String {
        switch kind {
        case .finding: findingText
        case .driftItem: driftItemText
        }
    }

    // The shipped schemas are tested to parse; a failure here is a build defect.
    public static let finding = try! JSONSchema(Array(findingText.utf8))
    public static let driftItem = try! JSONSchema(Array(driftItemText.utf8))

    public static func schema(_ kind: DeliveryPayload.Kind) -> JSONSchema {
        switch kind {
        case .finding: finding
        case .driftItem: driftItem
        }
    }
}

extension DeliveryPayload {
    /// Problems with the payload against its schema (empty: valid).
    public func violations() -> [String] {
        PayloadSchemas.schema(kind).validate(body)
    }
}
