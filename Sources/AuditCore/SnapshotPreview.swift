/// What a dashboard needs to draw its users pane before a stored snapshot is decoded: every user
/// as a list shows them, and how many roles, groups and teams the other panes will hold. Stored
/// beside each snapshot (a few percent of its size), so opening on a 100,000-user snapshot reads
/// megabytes, not the whole canonical file, before the first frame.
public struct SnapshotPreview: Sendable, Equatable {
    public struct User: Sendable, Equatable {
        public var id: String
        public var name: String
        public var username: String
        public var state: String
        /// The home division's name (`*` for all divisions, the id when the name is unknown).
        public var division: String
        /// Distinct permissions the user holds through every role, direct or inherited.
        public var permissions: Int

        public init(id: String, name: String, username: String, state: String, division: String, permissions: Int) {
            self.id = id
            self.name = name
            self.username = username
            self.state = state
            self.division = division
            self.permissions = permissions
        }
    }

    public var organization: String
    public var roles: Int
    public var groups: Int
    public var teams: Int
    /// In list order: by name, case-insensitively, then by id.
    public var users: [User]

    public init(organization: String, roles: Int, groups: Int, teams: Int, users: [User]) {
        self.organization = organization
        self.roles = roles
        self.groups = groups
        self.teams = teams
        self.users = users
    }

    public init(_ snapshot: Snapshot) {
        let divisions = DivisionNames(snapshot.divisions)
        var counter = PermissionCounter(roles: snapshot.roles)
        let keyed = snapshot.users.map { user in
            (
                key: user.name.lowercased(),
                user: User(
                    id: user.id, name: user.name, username: user.username ?? "", state: user.state, division: divisions.name(user.divisionId),
                    permissions: counter.count(of: user))
            )
        }
        self.init(
            organization: snapshot.organization?.name ?? "", roles: snapshot.roles.count, groups: snapshot.groups.count, teams: snapshot.teams.count,
            users: keyed.sorted { ($0.key, $0.user.id) < ($1.key, $1.user.id) }.map(\.user))
    }

    // MARK: Encoding

    /// The format's first bytes; a preview in another format is not read (the snapshot is).
    static let magic = Array("rbacwatch.preview/1\n".utf8)

    /// Compact bytes: the magic, then counts and strings, each string its UTF-8 length (a
    /// varint) and bytes.
    public func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(64 + users.count * 96)
        func varint(_ value: Int) {
            var v = UInt64(max(0, value))
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        func string(_ s: String) {
            var s = s
            s.withUTF8 { bytes in
                varint(bytes.count)
                out.append(contentsOf: bytes)
            }
        }
        string(organization)
        varint(roles)
        varint(groups)
        varint(teams)
        varint(users.count)
        for user in users {
            string(user.id)
            string(user.name)
            string(user.username)
            string(user.state)
            string(user.division)
            varint(user.permissions)
        }
        return out
    }

    /// Reads `encoded()` bytes; nil for anything else (another format, a damaged or truncated
    /// preview): the caller falls back to the snapshot itself.
    public init?(encoded bytes: [UInt8]) {
        var reader = PreviewReader(bytes: bytes)
        guard bytes.count >= Self.magic.count, bytes[0..<Self.magic.count].elementsEqual(Self.magic) else { return nil }
        reader.offset = Self.magic.count
        guard let organization = reader.string(), let roles = reader.varint(), let groups = reader.varint(), let teams = reader.varint(),
            let count = reader.varint(), count <= (bytes.count - reader.offset) / 6
        else { return nil }
        var users: [User] = []
        users.reserveCapacity(count)
        for _ in 0..<count {
            guard let id = reader.string(), let name = reader.string(), let username = reader.string(), let state = reader.string(),
                let division = reader.string(), let permissions = reader.varint()
            else { return nil }
            users.append(User(id: id, name: name, username: username, state: state, division: division, permissions: permissions))
        }
        guard reader.offset == bytes.count else { return nil }
        self.init(organization: organization, roles: roles, groups: groups, teams: teams, users: users)
    }
}

/// Bounds-checked reads over a preview's bytes.
private struct PreviewReader {
    let bytes: [UInt8]
    var offset = 0

    /// At most nine bytes (63 bits); nil past the end or for a longer one.
    mutating func varint() -> Int? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 63 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value <= UInt64(Int.max) ? Int(value) : nil }
            shift += 7
        }
        return nil
    }

    mutating func string() -> String? {
        guard let length = varint(), length <= bytes.count - offset else { return nil }
        defer { offset += length }
        return bytes.withUnsafeBufferPointer { buffer in
            String(decoding: UnsafeBufferPointer(rebasing: buffer[offset..<offset + length]), as: UTF8.self)
        }
    }
}

/// Division names by id, as lists show them: `*` for all divisions, the id when unknown, empty
/// for none.
public struct DivisionNames: Sendable {
    private let names: [String: String]

    public init(_ divisions: [Division]) {
        names = Dictionary(divisions.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    public func name(_ id: String?) -> String {
        guard let id else { return "" }
        return id == allDivisionsID ? "*" : names[id] ?? id
    }
}

/// Distinct permissions a user holds through their roles. They depend only on the set of roles,
/// so each distinct set is counted once, over interned permission ids (no string sets per user).
struct PermissionCounter {
    private var rolePermissionIds: [String: [Int]] = [:]
    private var stamps: [Int]
    private var countsByRoleSet: [[String]: Int] = [:]

    init(roles: [Role]) {
        var permissionIds: [String: Int] = [:]
        for role in roles {
            rolePermissionIds[role.id] = role.permissions.map { permission in
                if let id = permissionIds[permission] { return id }
                let id = permissionIds.count
                permissionIds[permission] = id
                return id
            }
        }
        stamps = [Int](repeating: -1, count: permissionIds.count)
    }

    mutating func count(of user: User) -> Int {
        count(roles: Array(Set(user.access.map(\.roleId))).sorted())
    }

    /// Distinct permissions of these roles (sorted, each once).
    mutating func count(roles roleIds: [String]) -> Int {
        if let known = countsByRoleSet[roleIds] { return known }
        let stamp = countsByRoleSet.count
        var count = 0
        for roleId in roleIds {
            for id in rolePermissionIds[roleId] ?? [] where stamps[id] != stamp {
                stamps[id] = stamp
                count += 1
            }
        }
        countsByRoleSet[roleIds] = count
        return count
    }
}
