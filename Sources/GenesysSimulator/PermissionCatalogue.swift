/// Real Genesys Cloud permission strings (`domain:entity:action`) the generator builds roles from,
/// grouped into the personas contact centres actually define roles for.
enum PermissionCatalogue {
    /// Every domain → entity → actions the generator knows; Master Admin gets `*` on each entity.
    static let entities: [(domain: String, entity: String, actions: [String])] = [
        ("analytics", "conversationAggregate", ["view"]),
        ("analytics", "conversationDetail", ["view"]),
        ("analytics", "dataExport", ["add", "view", "delete"]),
        ("analytics", "queueObservation", ["view"]),
        ("analytics", "userAggregate", ["view"]),
        ("analytics", "userDetail", ["view"]),
        ("analytics", "userObservation", ["view"]),
        ("architect", "datatable", ["view", "add", "edit", "delete"]),
        ("architect", "flow", ["view", "add", "edit", "delete", "publish"]),
        ("architect", "schedule", ["view", "add", "edit", "delete"]),
        ("architect", "userPrompt", ["view", "add", "edit", "delete"]),
        ("audits", "audit", ["view"]),
        ("authorization", "division", ["view", "add", "edit", "delete"]),
        ("authorization", "grant", ["view", "add", "delete"]),
        ("authorization", "role", ["view", "add", "edit", "delete"]),
        ("chat", "chat", ["access"]),
        ("coaching", "appointment", ["view", "add", "edit"]),
        ("conversation", "call", ["add", "monitor", "coach", "pull", "record"]),
        ("conversation", "communication", ["view", "accept", "transfer"]),
        ("conversation", "email", ["create"]),
        ("conversation", "message", ["create", "view"]),
        ("conversation", "webchat", ["view"]),
        ("directory", "group", ["add", "edit", "delete"]),
        ("directory", "organization", ["admin"]),
        ("directory", "user", ["view", "add", "edit", "delete", "setPassword"]),
        ("externalContacts", "contact", ["view", "add", "edit", "delete"]),
        ("groups", "team", ["view", "add", "edit", "delete", "assign"]),
        ("integrations", "action", ["view", "add", "edit", "delete", "execute"]),
        ("integrations", "integration", ["view", "add", "edit", "delete"]),
        ("knowledge", "document", ["view", "add", "edit", "delete"]),
        ("knowledge", "knowledgebase", ["view", "add", "edit", "delete"]),
        ("learning", "module", ["view", "add", "edit"]),
        ("messaging", "integration", ["view", "add", "edit", "delete"]),
        ("oauth", "client", ["view", "add", "edit", "delete"]),
        ("outbound", "callabletimeset", ["view", "add", "edit", "delete"]),
        ("outbound", "campaign", ["view", "add", "edit", "delete"]),
        ("outbound", "contactList", ["view", "add", "edit", "delete"]),
        ("outbound", "dnclist", ["view", "add", "edit", "delete"]),
        ("outbound", "ruleset", ["view", "add", "edit", "delete"]),
        ("quality", "calibration", ["view", "add", "edit"]),
        ("quality", "evaluation", ["view", "add", "edit", "delete"]),
        ("quality", "evaluationForm", ["view", "add", "edit", "delete"]),
        ("quality", "survey", ["view"]),
        ("recording", "recording", ["view", "delete", "editRetention"]),
        ("recording", "recordingSegment", ["view"]),
        ("recording", "retentionPolicy", ["view", "add", "edit", "delete"]),
        ("recording", "screenRecording", ["view"]),
        ("routing", "email", ["manage"]),
        ("routing", "queue", ["view", "add", "edit", "delete", "join"]),
        ("routing", "queueMember", ["manage"]),
        ("routing", "skill", ["manage", "assign"]),
        ("routing", "utilization", ["manage"]),
        ("routing", "wrapupCode", ["view", "add", "edit"]),
        ("scripter", "script", ["view", "add", "edit", "publish"]),
        ("speechandtextanalytics", "program", ["view", "add", "edit"]),
        ("sso", "provider", ["view", "add", "edit", "delete"]),
        ("telephony", "phone", ["view", "add", "edit", "assign"]),
        ("telephony", "plugin", ["all"]),
        ("telephony", "trunk", ["view", "add", "edit", "delete"]),
        ("wfm", "agentSchedule", ["view"]),
        ("wfm", "historicalAdherence", ["view"]),
        ("wfm", "managementUnit", ["view", "edit"]),
        ("wfm", "schedule", ["view", "add", "edit"]),
        ("wfm", "shortTermForecast", ["view", "edit"]),
        ("wfm", "timeOffRequest", ["add", "edit"]),
    ]

    struct Persona {
        var title: String
        var department: String
        var permissions: [String]
        /// Permissions a variant of the role may add.
        var extras: [String]
    }

    static let agentBase = [
        "chat:chat:access", "conversation:call:add", "conversation:communication:accept",
        "conversation:communication:transfer", "conversation:communication:view", "conversation:email:create",
        "conversation:message:create", "conversation:webchat:view", "externalContacts:contact:view",
        "knowledge:document:view", "routing:queue:join", "routing:wrapupCode:view", "scripter:script:view",
        "wfm:agentSchedule:view", "wfm:timeOffRequest:add",
    ]

    static let personas: [Persona] = [
        Persona(
            title: "Agent", department: "Customer Care", permissions: agentBase,
            extras: ["externalContacts:contact:edit", "analytics:userAggregate:view", "conversation:message:view"]),
        Persona(
            title: "Supervisor", department: "Customer Care",
            permissions: agentBase + [
                "analytics:conversationAggregate:view", "analytics:conversationDetail:view",
                "analytics:queueObservation:view", "analytics:userDetail:view", "analytics:userObservation:view",
                "coaching:appointment:add", "conversation:call:coach", "conversation:call:monitor",
                "conversation:call:pull", "directory:user:view", "groups:team:assign", "groups:team:view",
                "quality:evaluation:view", "recording:recording:view", "recording:recordingSegment:view",
                "routing:queue:view", "routing:queueMember:manage", "wfm:schedule:view",
            ],
            extras: ["routing:skill:assign", "recording:recording:delete", "analytics:dataExport:add"]),
        Persona(
            title: "Quality Analyst", department: "Quality",
            permissions: [
                "analytics:conversationDetail:view", "quality:calibration:add", "quality:evaluation:add",
                "quality:evaluation:edit", "quality:evaluation:view", "quality:evaluationForm:view",
                "recording:recording:view", "recording:recordingSegment:view", "recording:screenRecording:view",
                "speechandtextanalytics:program:view",
            ],
            extras: ["quality:evaluationForm:edit", "recording:recording:delete", "quality:evaluation:delete"]),
        Persona(
            title: "WFM Planner", department: "Workforce Management",
            permissions: [
                "analytics:queueObservation:view", "routing:queue:view", "wfm:historicalAdherence:view",
                "wfm:managementUnit:view", "wfm:schedule:add", "wfm:schedule:edit", "wfm:schedule:view",
                "wfm:shortTermForecast:edit", "wfm:shortTermForecast:view", "wfm:timeOffRequest:edit",
            ],
            extras: ["wfm:managementUnit:edit", "directory:user:view"]),
        Persona(
            title: "Reporting Analyst", department: "Business Intelligence",
            permissions: [
                "analytics:conversationAggregate:view", "analytics:conversationDetail:view",
                "analytics:dataExport:view", "analytics:queueObservation:view", "analytics:userAggregate:view",
                "analytics:userDetail:view",
            ],
            extras: ["analytics:dataExport:add", "analytics:dataExport:delete", "recording:recording:view"]),
        Persona(
            title: "Telephony Engineer", department: "IT Operations",
            permissions: [
                "telephony:phone:add", "telephony:phone:assign", "telephony:phone:edit", "telephony:phone:view",
                "telephony:plugin:all", "telephony:trunk:view",
            ],
            extras: ["telephony:trunk:edit", "telephony:trunk:add", "telephony:trunk:delete"]),
        Persona(
            title: "Integration Developer", department: "IT Operations",
            permissions: [
                "architect:datatable:edit", "architect:datatable:view", "integrations:action:execute",
                "integrations:action:view", "integrations:integration:view", "oauth:client:view",
            ],
            extras: [
                "integrations:action:add", "integrations:action:edit", "integrations:integration:add",
                "integrations:integration:edit", "oauth:client:add", "oauth:client:edit",
            ]),
        Persona(
            title: "Flow Designer", department: "IT Operations",
            permissions: [
                "architect:datatable:view", "architect:flow:add", "architect:flow:edit", "architect:flow:view",
                "architect:schedule:view", "architect:userPrompt:view", "routing:queue:view",
            ],
            extras: ["architect:flow:publish", "architect:flow:delete", "architect:userPrompt:edit"]),
        Persona(
            title: "Outbound Manager", department: "Outbound",
            permissions: [
                "outbound:callabletimeset:view", "outbound:campaign:edit", "outbound:campaign:view",
                "outbound:contactList:add", "outbound:contactList:edit", "outbound:contactList:view",
                "outbound:dnclist:view", "outbound:ruleset:view",
            ],
            extras: ["outbound:dnclist:edit", "outbound:campaign:delete", "outbound:contactList:delete"]),
        Persona(
            title: "Knowledge Manager", department: "Knowledge",
            permissions: [
                "knowledge:document:add", "knowledge:document:edit", "knowledge:document:view",
                "knowledge:knowledgebase:view",
            ],
            extras: ["knowledge:knowledgebase:edit", "knowledge:document:delete"]),
        Persona(
            title: "Security Auditor", department: "Security",
            permissions: [
                "audits:audit:view", "authorization:division:view", "authorization:grant:view",
                "authorization:role:view", "directory:user:view", "groups:team:view", "oauth:client:view",
            ],
            extras: ["analytics:conversationDetail:view"]),
        Persona(
            title: "User Administrator", department: "IT Operations",
            permissions: [
                "directory:group:add", "directory:group:edit", "directory:user:add", "directory:user:edit",
                "directory:user:view", "groups:team:add", "groups:team:edit", "routing:skill:assign",
                "telephony:phone:assign",
            ],
            extras: ["authorization:grant:add", "authorization:grant:delete", "directory:user:delete", "directory:user:setPassword"]),
        Persona(
            title: "Routing Administrator", department: "Customer Care",
            permissions: [
                "routing:email:manage", "routing:queue:add", "routing:queue:edit", "routing:queue:view",
                "routing:skill:manage", "routing:utilization:manage", "routing:wrapupCode:add",
                "routing:wrapupCode:edit",
            ],
            extras: ["routing:queue:delete", "messaging:integration:edit"]),
        Persona(
            title: "Recording Administrator", department: "Compliance",
            permissions: [
                "recording:recording:view", "recording:retentionPolicy:view", "recording:retentionPolicy:edit",
                "recording:recordingSegment:view",
            ],
            extras: ["recording:recording:delete", "recording:retentionPolicy:delete", "recording:recording:editRetention"]),
        Persona(
            title: "Division Administrator", department: "IT Operations",
            permissions: [
                "authorization:division:edit", "authorization:division:view", "authorization:role:view",
                "directory:user:edit", "directory:user:view",
            ],
            extras: ["authorization:grant:add", "authorization:role:edit"]),
    ]

    /// Built-in roles: name, defaultRoleId, and permissions (`*` entries expand to every entity).
    static let builtIns: [(name: String, defaultRoleId: String, permissions: [String], legacy: [String])] = [
        ("Master Admin", "admin", ["*"], ["admin"]),
        ("Employee", "employee", ["chat:chat:access", "directory:user:view", "groups:team:view", "knowledge:document:view"], []),
        ("User", "user", ["chat:chat:access", "conversation:communication:view"], []),
        ("Supervisor", "supervisor", personas[1].permissions, []),
        ("Quality Administrator", "qualityAdministrator", personas[2].permissions + ["quality:evaluationForm:add", "quality:evaluationForm:edit", "quality:evaluationForm:delete"], []),
        ("Quality Evaluator", "qualityEvaluator", ["quality:evaluation:add", "quality:evaluation:view", "recording:recording:view"], []),
        ("Telephony Admin", "telephonyAdmin", personas[5].permissions + personas[5].extras, []),
        ("Outbound Admin", "outboundAdmin", personas[8].permissions + personas[8].extras, []),
        ("Contact Center Manager", "contactCenterManager", personas[12].permissions + ["routing:queueMember:manage", "analytics:queueObservation:view"], []),
        ("Communicate - User", "communicateUser", ["conversation:call:add", "chat:chat:access"], []),
        ("Trusted External User", "trustedExternalUser", ["directory:user:view"], []),
    ]

    /// Permissions that make a role dangerous; sprinkled rarely into custom roles.
    static let dangerous = [
        "authorization:grant:add", "authorization:role:edit", "authorization:role:add", "oauth:client:add",
        "oauth:client:edit", "integrations:integration:add", "directory:organization:admin",
        "recording:recording:delete", "telephony:trunk:edit", "sso:provider:edit",
    ]

    /// Turns `domain:entity:action` strings into policies, one per domain and entity.
    static func policies(for permissions: [String]) -> [SimPolicy] {
        if permissions == ["*"] {
            return entities.map { SimPolicy(domain: $0.domain, entityName: $0.entity, actions: ["*"]) }
        }
        var grouped: [String: [String]] = [:]
        for permission in Set(permissions) {
            let parts = permission.split(separator: ":")
            guard parts.count == 3 else { continue }
            grouped["\(parts[0]):\(parts[1])", default: []].append(String(parts[2]))
        }
        return grouped.keys.sorted().map { key in
            let parts = key.split(separator: ":")
            return SimPolicy(domain: String(parts[0]), entityName: String(parts[1]), actions: grouped[key]!.sorted())
        }
    }
}
