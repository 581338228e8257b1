/** Invisible characters that carry no meaning for the model: zero-width spaces and joiners, BOM, bidi controls. */
const INVISIBLE = /[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]/g;

/**
 * Turns Discord message text into what the model should read: lone surrogates become U+FFFD, invisible and
 * direction-control characters go, custom emoji tags become their names (":pepe_cry:", which carry the feeling;
 * the ids do not), and user, role and channel mentions become short placeholders instead of 18-digit ids.
 */
export function normaliseInput(text: string): string {
  return text
    .toWellFormed()
    .replace(INVISIBLE, "")
    .replace(/<a?:(\w{1,32}):\d{17,20}>/g, ":$1:")
    .replace(/<@!?\d{17,20}>/g, "@user")
    .replace(/<@&\d{17,20}>/g, "@role")
    .replace(/<#\d{17,20}>/g, "#channel")
    .trim();
}
