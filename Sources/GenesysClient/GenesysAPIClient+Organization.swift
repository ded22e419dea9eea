import AuditCore

extension GenesysAPIClient {
    /// The organisation the client's credentials belong to (`GET /api/v2/organizations/me`).
    public func organization() async throws -> Organization {
        let wire: OrganizationWire = try await get("/api/v2/organizations/me")
        return Organization(id: wire.id, name: wire.name ?? "")
    }
}
