import Foundation

/// Genesys Cloud regions and their API hosts; the login host swaps `api.` for `login.`.
public enum GenesysRegion {
    /// Region name → API host.
    public static let apiHosts: [String: String] = [
        "us-east-1": "api.mypurecloud.com",
        "us-east-2": "api.use2.us-gov-pure.cloud",
        "us-west-2": "api.usw2.pure.cloud",
        "ca-central-1": "api.cac1.pure.cloud",
        "sa-east-1": "api.sae1.pure.cloud",
        "mx-central-1": "api.mxc1.pure.cloud",
        "eu-west-1": "api.mypurecloud.ie",
        "eu-west-2": "api.euw2.pure.cloud",
        "eu-central-1": "api.mypurecloud.de",
        "eu-central-2": "api.euc2.pure.cloud",
        "eusc-de-east-1": "api.edee1.eusc-pure.cloud",
        "me-central-1": "api.mec1.pure.cloud",
        "ap-south-1": "api.aps1.pure.cloud",
        "ap-southeast-1": "api.apse1.pure.cloud",
        "ap-southeast-2": "api.mypurecloud.com.au",
        "ap-northeast-1": "api.mypurecloud.jp",
        "ap-northeast-2": "api.apne2.pure.cloud",
        "ap-northeast-3": "api.apne3.pure.cloud",
    ]

    /// API and login base URLs for a region name (`eu-west-1`) or an API host
    /// (`api.mypurecloud.ie`, `mypurecloud.ie`).
    public static func baseURLs(for region: String) -> (api: String, login: String)? {
        let key = region.lowercased().trimmingCharacters(in: .whitespaces)
        let host: String
        if let known = apiHosts[key] {
            host = known
        } else if let known = apiHosts.values.first(where: { $0 == key || $0 == "api." + key }) {
            host = known
        } else {
            return nil
        }
        let login = "login." + host.dropFirst("api.".count)
        return ("https://\(host)", "https://\(login)")
    }
}

