"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): feelings,
questions, the office and the computer, the city, the countryside, and more short
texts and near paraphrases."""

TEXTS = """
# feelings and states
I feel a bit nervous about tomorrow.
She was delighted with her present.
He looked disappointed when he heard the news.
I'm worried about my exams.
They were furious about the delay.
She felt lonely in the new city.
He is afraid of spiders.
I was embarrassed when I forgot her name.
We were relieved to hear that everyone was safe.
She got angry when he interrupted her.
I feel much better after a walk.
He was too shy to ask her to dance.
The children were excited about the trip.
I'm really looking forward to the weekend.
She was jealous of her sister's new bike.
He felt guilty for lying.
I am grateful for your patience.
We were shocked by the price.
She is confident about the interview.
He gets stressed before every presentation.
I was homesick during my first month abroad.
She cried with happiness at the wedding.
He laughed until he cried.
I feel sick.
My head hurts.
My back is killing me.
I have a sore throat.
I'm freezing.
I'm sweating.
I'm full.
I can't breathe in here.
I'm not in the mood.
I feel great today.
I'm fed up with the rain.
I'm getting better at it.
I'm not sure what to do.
I need a break.
I need some fresh air.
I could sleep for a week.
Leave it to me.
Trust me.
Believe me, it's worth it.
Don't worry about it.
Don't be afraid.
Don't give up!
Keep going!
Calm down.
Cheer up!
Take it easy.
Take your time.
Mind your head.
Mind the step.
Fingers crossed!
Touch wood.
# questions people ask
What is the best way to learn to swim as an adult?
How long does it take to walk to the castle?
Which bus goes to the university?
Where do I hand in my form?
When does the pool open on Sundays?
Why does my bread always come out flat?
How can I stop my glasses from fogging up?
What should I feed a baby hedgehog?
How do you say goodbye in Italian?
Is it rude to be late to a dinner party?
Why do onions make you cry?
What happens if I miss my connecting flight?
Can you freeze cooked rice?
How often should I change my toothbrush?
What is the quickest way to cool down a room?
Where do the ducks go in winter?
How long do tortoises live?
Why is the sea salty?
Why do we have leap years?
Who invented the bicycle?
How many bones are in the human hand?
What is the tallest building in the world?
How hot is the surface of Venus?
How do submarines dive and surface?
Why do airplanes leave white trails?
Can a goldfish remember anything?
What do you call a baby kangaroo?
What language do they speak in Brazil?
What year did the war end?
How do I cancel my subscription?
Why is my internet so slow in the evening?
Where do I find my account number?
How do I download my bank statements?
Why was my payment declined?
Can I get a refund if I cancel?
How much notice do I have to give my landlord?
Is the office open on bank holidays?
Who do I ask about parking permits?
Which documents do I need to open an account?
How long is the warranty on this washing machine?
# office and computer
The spreadsheet freezes whenever I sort the second column.
Please save the presentation as a PDF before sending it.
The shared drive is only available on the office network.
I accidentally replied to everyone.
The video call froze just as I started speaking.
The office coffee machine has been broken for a week.
The new desks can be raised so that you can stand.
My monitor keeps switching off on its own.
The keyboard shortcut for copy does not work in this program.
She organised her inbox into folders by client.
The company switched to a new email provider over the weekend.
IT will replace our laptops in the spring.
The password has to be changed every ninety days.
Lock your screen when you leave your desk.
The file was overwritten by an older version.
The team wiki is the first place to look.
He prints every email, which drives his colleagues mad.
The conference room projector needs a special cable.
Please use the booking system for the meeting rooms.
The open-plan office is too noisy for phone calls.
# the city
The new tram line opens next summer.
The high street is full of empty shops.
The square is lit up with fairy lights in December.
A street musician plays the saxophone outside the station.
The park gates are locked at sunset.
The old warehouses by the docks are now expensive flats.
The city council plans to ban cars from the centre.
Rents have risen faster than wages in the capital.
The rubbish collectors are on strike.
There is a farmers' market every Saturday in the car park.
The bike sharing scheme has two hundred stations.
The fountain in the square has been switched off to save water.
The skyscraper can be seen from every part of town.
Pigeons nest under the railway bridge.
The night buses run every half hour.
The pedestrian bridge sways slightly when crowded.
The city walls can be walked in an hour.
A new playground opened in the park.
The historic centre is closed to coaches.
The neighbourhood is famous for its street food.
# the countryside
The farm shop sells eggs from its own hens.
Sheep graze on the hills above the village.
The country lane is too narrow for two cars.
The stone walls divide the fields into small squares.
A tractor pulled the trailer full of hay.
The nearest shop is eight kilometres away.
The village pub is the centre of local life.
The bus comes through the village twice a day.
Wild garlic grows along the stream in spring.
The barn was converted into a holiday cottage.
The old mill still grinds flour once a month.
Footpaths cross the farmland in every direction.
Close the gate behind you to keep the cows in.
Hay fever season starts when the grass flowers.
The wood is carpeted with bluebells in May.
# more near paraphrases
The lift is being repaired, so please use the stairs.
Take the stairs, as the lift is out of action for repairs.
The concert starts an hour later than planned.
The start of the concert has been put back by an hour.
He bought the house without seeing it first.
He purchased the property sight unseen.
The airport is forty minutes from the city by train.
By rail, it takes forty minutes to get from the city to the airport.
The puppy chewed through the phone charger.
Our young dog bit right through the charging cable.
She has run twelve marathons.
She has completed the marathon distance twelve times.
Students get free entry on Wednesdays.
On Wednesdays there is no charge for students.
The company moved its headquarters to Dublin.
The firm relocated its main office to Dublin.
This jacket is warm but very light.
The coat keeps you warm without being heavy.
We were stuck in traffic for two hours.
A traffic jam held us up for two hours.
The tomatoes in the garden are finally turning red.
At last the garden tomatoes are ripening.
The old bridge will be replaced by a wider one.
A wider bridge is going to replace the old one.
His new novel comes out in March.
His next book is published in March.
The kids woke up early on Christmas morning.
On Christmas Day the children were up at dawn.
There are fewer fish in the lake than there used to be.
The lake holds less fish than in the past.
She changed her name when she got married.
After her wedding she took a new surname.
The hospital is looking for volunteers.
Volunteers are wanted at the hospital.
The wifi in the hotel was very slow.
The hotel's internet connection was painfully slow.
The paint needs two days to dry completely.
It takes the paint forty-eight hours to dry fully.
# more short texts
Good evening and welcome.
Nice to hear from you.
How lovely to see you!
Hello, stranger!
Ciao!
Adiós!
Hey!
Oi!
Hi!
Yo!
Hello?
Bye!
Howdy!
Shalom.
Namaste.
Good to be back.
Good to know.
Glad you came.
Glad to hear it.
Sorry to hear that.
Sorry I'm late.
Sorry to bother you.
No worries.
No hurry.
No idea.
No comment.
Same here.
Me too.
Neither do I.
So do I.
I agree.
I disagree.
I doubt it.
I hope so.
I think so.
I'm afraid not.
It depends.
It's up to you.
It's a deal.
It's my treat.
It's on me.
It's not my fault.
It's your turn.
It's a pity.
It's too late now.
It doesn't matter.
It's getting dark.
It's all right.
It works!
It's broken.
Nobody's perfect.
Anything else?
Is that all?
Who's next?
Next, please!
Any questions?
Anyone for tennis?
Guess what!
Listen!
Look!
Come in!
Sit!
Stay!
Good dog!
Bad cat!
Here, kitty.
Bath time!
Bedtime!
Lights out.
Wake up!
Rise and shine!
Time to go.
Off we go!
On your marks, get set, go!
Three, two, one!
Happy Friday!
Happy Easter!
Happy Mother's Day!
Happy retirement!
Happy travels!
Bon voyage!
Good hunting!
Godspeed.
Cheers, mate.
Ta!
Respect!
Well played.
Hard luck.
Better luck next time.
So close!
Almost!
Not quite.
Spot on!
Nailed it!
Oh, come on!
Seriously?
Unreal.
Bravo!
Encore!
""".strip()
