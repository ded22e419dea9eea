// The shipped themes, compiled in. Generated from themes/*.json; ThemeTests keeps the two equal.
enum BuiltInThemes {
    static let sources: [String] = [
#"""
{
  "name": "default",
  "description": "Dark: light text on a deep blue-grey background.",
  "palette": {
    "bg": "#1b1e27", "panel": "#232735", "fg": "#d8dee9", "muted": "#8f98aa", "border": "#3b4252",
    "blue": "#81a1c1", "cyan": "#88c0d0", "green": "#a3be8c", "yellow": "#ebcb8b", "orange": "#d08770",
    "red": "#d0707a", "magenta": "#b48ead", "select": "#3b4a6b"
  },
  "roles": {
    "background": {"fg": "fg", "bg": "bg"},
    "text": {"fg": "fg", "bg": "bg"},
    "muted": {"fg": "muted", "bg": "bg"},
    "border": {"fg": "border", "bg": "bg"},
    "header": {"fg": "bg", "bg": "cyan", "bold": true},
    "title": {"fg": "cyan", "bg": "bg", "bold": true},
    "tab": {"fg": "muted", "bg": "panel"},
    "tabActive": {"fg": "bg", "bg": "blue", "bold": true},
    "selection": {"fg": "fg", "bg": "select", "bold": true},
    "match": {"fg": "yellow", "bg": "bg", "underline": true},
    "critical": {"fg": "red", "bg": "bg", "bold": true},
    "high": {"fg": "orange", "bg": "bg", "bold": true},
    "medium": {"fg": "yellow", "bg": "bg"},
    "low": {"fg": "green", "bg": "bg"},
    "approved": {"fg": "muted", "bg": "bg", "dim": true},
    "new": {"fg": "bg", "bg": "yellow", "bold": true},
    "error": {"fg": "bg", "bg": "red", "bold": true},
    "dialog": {"fg": "fg", "bg": "panel"},
    "footer": {"fg": "muted", "bg": "panel"},
    "key": {"fg": "cyan", "bg": "panel", "bold": true}
  },
  "monochrome": {
    "header": ["reverse"], "tabActive": ["reverse", "bold"], "selection": ["reverse"], "title": ["bold"],
    "critical": ["bold", "underline"], "high": ["bold"], "approved": ["dim"], "new": ["reverse"],
    "error": ["reverse", "bold"], "match": ["underline"], "key": ["bold"], "footer": ["dim"]
  }
}
"""#,
#"""
{
  "name": "high-contrast",
  "description": "Maximum contrast: pure black and white with saturated severity colours.",
  "palette": {
    "bg": "#000000", "fg": "#ffffff", "yellow": "#ffff00", "cyan": "#00ffff", "green": "#00ff00",
    "orange": "#ff8700", "red": "#d70000", "blue": "#5f87ff", "grey": "#c0c0c0"
  },
  "roles": {
    "background": {"fg": "fg", "bg": "bg"},
    "text": {"fg": "fg", "bg": "bg"},
    "muted": {"fg": "grey", "bg": "bg"},
    "border": {"fg": "fg", "bg": "bg"},
    "header": {"fg": "bg", "bg": "yellow", "bold": true},
    "title": {"fg": "yellow", "bg": "bg", "bold": true, "underline": true},
    "tab": {"fg": "fg", "bg": "bg"},
    "tabActive": {"fg": "bg", "bg": "fg", "bold": true},
    "selection": {"fg": "bg", "bg": "cyan", "bold": true},
    "match": {"fg": "yellow", "bg": "bg", "bold": true, "underline": true},
    "critical": {"fg": "fg", "bg": "red", "bold": true},
    "high": {"fg": "orange", "bg": "bg", "bold": true},
    "medium": {"fg": "yellow", "bg": "bg", "bold": true},
    "low": {"fg": "green", "bg": "bg"},
    "approved": {"fg": "grey", "bg": "bg"},
    "new": {"fg": "bg", "bg": "green", "bold": true},
    "error": {"fg": "fg", "bg": "red", "bold": true},
    "dialog": {"fg": "fg", "bg": "bg"},
    "footer": {"fg": "fg", "bg": "bg"},
    "key": {"fg": "yellow", "bg": "bg", "bold": true}
  },
  "monochrome": {
    "header": ["reverse", "bold"], "tabActive": ["reverse", "bold"], "selection": ["reverse", "bold"], "title": ["bold", "underline"],
    "critical": ["reverse", "bold"], "high": ["bold", "underline"], "medium": ["bold"], "approved": ["dim"], "new": ["reverse"],
    "error": ["reverse", "bold"], "match": ["underline", "bold"], "key": ["bold"]
  }
}
"""#,
#"""
{
  "name": "light",
  "description": "Dark text on a warm white background.",
  "palette": {
    "bg": "#fafaf7", "panel": "#ecebe6", "fg": "#2b2f36", "muted": "#5f656f", "border": "#c9c7bf",
    "blue": "#2f5f9e", "cyan": "#0f6f7f", "green": "#3d7a2a", "yellow": "#8a6200", "orange": "#b5531a",
    "red": "#b3261e", "select": "#cfe0f7"
  },
  "roles": {
    "background": {"fg": "fg", "bg": "bg"},
    "text": {"fg": "fg", "bg": "bg"},
    "muted": {"fg": "muted", "bg": "bg"},
    "border": {"fg": "border", "bg": "bg"},
    "header": {"fg": "bg", "bg": "blue", "bold": true},
    "title": {"fg": "blue", "bg": "bg", "bold": true},
    "tab": {"fg": "muted", "bg": "panel"},
    "tabActive": {"fg": "bg", "bg": "cyan", "bold": true},
    "selection": {"fg": "fg", "bg": "select", "bold": true},
    "match": {"fg": "orange", "bg": "bg", "underline": true},
    "critical": {"fg": "red", "bg": "bg", "bold": true},
    "high": {"fg": "orange", "bg": "bg", "bold": true},
    "medium": {"fg": "yellow", "bg": "bg"},
    "low": {"fg": "green", "bg": "bg"},
    "approved": {"fg": "muted", "bg": "bg"},
    "new": {"fg": "bg", "bg": "orange", "bold": true},
    "error": {"fg": "bg", "bg": "red", "bold": true},
    "dialog": {"fg": "fg", "bg": "panel"},
    "footer": {"fg": "muted", "bg": "panel"},
    "key": {"fg": "blue", "bg": "panel", "bold": true}
  },
  "monochrome": {
    "header": ["reverse"], "tabActive": ["reverse", "bold"], "selection": ["reverse"], "title": ["bold"],
    "critical": ["bold", "underline"], "high": ["bold"], "approved": ["dim"], "new": ["reverse"],
    "error": ["reverse", "bold"], "match": ["underline"], "key": ["bold"], "footer": ["dim"]
  }
}
"""#,
#"""
{
  "name": "monochrome",
  "description": "No colour at all: bold, underline, reverse and dim only. Used when NO_COLOR is set.",
  "palette": {},
  "roles": {},
  "monochrome": {
    "header": ["reverse"], "tabActive": ["reverse", "bold"], "selection": ["reverse"], "title": ["bold"],
    "critical": ["bold", "underline"], "high": ["bold"], "approved": ["dim"], "new": ["reverse"],
    "error": ["reverse", "bold"], "match": ["underline"], "key": ["bold"], "footer": ["dim"], "muted": ["dim"]
  }
}
"""#,
    ]
}
